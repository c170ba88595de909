"""``nanoclaw channels list|token|pair|on|off``: the channels from a terminal, generic over their manifests.

Channels run inside NanoClaw, so while it runs every command goes to it (signed in with a one-time session, like
``nanoclaw approvals``) and its open pages update. Without it, the listing and turning a channel off work on the
database, a token is checked and saved so its channel starts with NanoClaw, and what needs a live link (a pairing
code, turning a channel on) asks to start NanoClaw first. Tokens are read from stdin or a hidden prompt, never from the
command line (argv is visible to every user and kept in shell history).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from nanoclaw_app.channels import registry
from nanoclaw_app.channels.manifest import ChannelManifest
from nanoclaw_app.commands.host_api import call_running_host
from nanoclaw_app.commands.output import json_flag, jsonable, print_json, print_table
from nanoclaw_app.errors import ConfigError
from nanoclaw_app.services import channels
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.services.offline import open_secrets

_NAMES = tuple(m.name for m in registry.CHANNELS)
_WITH_TOKENS = tuple(m.name for m in registry.CHANNELS if m.token_action)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``channels`` subcommands."""
    parser = sub.add_parser("channels", help="the chat channels: health, tokens, pairing codes")
    verbs = parser.add_subparsers(dest="channels_command", required=True)

    listing = verbs.add_parser("list", help="each channel with its health and paired chats")
    json_flag(listing)
    listing.set_defaults(run=_list)

    token = verbs.add_parser("token", help="check and save a channel's token (read from stdin or a hidden prompt)")
    token.add_argument("channel", choices=_WITH_TOKENS)
    json_flag(token)
    token.set_defaults(run=_token)

    pair = verbs.add_parser("pair", help="a 4-digit code to send from your phone chat to pair it")
    pair.add_argument("channel", choices=_NAMES)
    json_flag(pair)
    pair.set_defaults(run=_pair)

    on = verbs.add_parser("on", help="turn a channel that was set up before back on")
    on.add_argument("channel", choices=_NAMES)
    json_flag(on)
    on.set_defaults(run=_on)

    off = verbs.add_parser("off", help="turn a channel off (it stays off after a restart)")
    off.add_argument("channel", choices=_NAMES)
    off.add_argument("--forget", action="store_true",
                     help="also remove its setup (delete its token, unlink the device)")
    json_flag(off)
    off.set_defaults(run=_off)


def _words(state: str) -> str:
    return channels.STATE_WORDS.get(state, state)


def _row(view: dict[str, Any]) -> dict[str, Any]:
    status = view["status"]
    chats = ", ".join(f"{c['title']} ({', '.join(c['agents']) or 'no agent'})" for c in view["chats"])
    detail = status.get("detail") or ""
    if view.get("details", {}).get("mode"):
        detail = f"{view['details']['mode']} number" + (f"; {detail}" if detail else "")
    return {"channel": view["name"], "state": _words(status["state"]), "account": status.get("account") or "",
            "waiting": view["waiting"] or "", "chats": chats, "detail": detail}


async def _list(args: argparse.Namespace, services: AppServices) -> int:
    answer = await call_running_host(services, "GET", "/api/channels")
    offline = answer is None
    views: list[dict[str, Any]] = (jsonable(await channels.list_channels(services)) if answer is None
                                   else list(answer["channels"]))
    if args.json:
        print_json(views)
        return 0
    print_table([_row(v) for v in views], ["channel", "state", "account", "waiting", "chats", "detail"])
    if offline:
        print("note: NanoClaw is not running; channels connect when it starts", file=sys.stderr)
    return 0


def _read_values(manifest: ChannelManifest) -> dict[str, str]:
    """Each of the token action's values: a hidden prompt on a terminal; otherwise one line each from stdin."""
    action = manifest.actions[manifest.token_action or ""]
    if sys.stdin.isatty():
        return {f.name: getpass.getpass(f"{f.label} (hidden): ") for f in action.fields}
    if len(action.fields) == 1:
        return {action.fields[0].name: sys.stdin.read()}
    lines = sys.stdin.read().splitlines()
    return {f.name: (lines[i] if i < len(lines) else "") for i, f in enumerate(action.fields)}


async def _token(args: argparse.Namespace, services: AppServices) -> int:
    manifest = registry.manifest(args.channel)
    if manifest is None or manifest.token_action is None:
        raise ConfigError(f"{args.channel} takes no token")
    values = _read_values(manifest)
    path = f"/api/channels/{manifest.name}/{manifest.token_action}"
    answer = await call_running_host(services, "POST", path, json=values)
    if answer is None:
        await open_secrets(services)
        answer = jsonable(await channels.run_action(services, manifest.name, manifest.token_action, "POST", values))
    if args.json:
        print_json(answer)
        return 0
    print(answer["message"])
    if answer["started"]:
        print(f"{manifest.title} is connected; pair your chat with `nanoclaw channels pair {manifest.name}`")
    else:
        print(f"NanoClaw is not running: {manifest.title} connects when it starts")
    if answer.get("note"):
        print(f"note: {answer['note']}")
    return 0


async def _pair(args: argparse.Namespace, services: AppServices) -> int:
    answer = await call_running_host(services, "POST", f"/api/channels/{args.channel}/pairing-code", json={})
    if answer is None:
        raise ConfigError(channels.START_FIRST)
    if args.json:
        print_json(answer)
        return 0
    manifest = registry.manifest(args.channel)
    if manifest is None:
        raise ConfigError(f"there is no channel called {args.channel!r}")
    print(manifest.pair_hint(answer["code"], answer.get("send_to")))
    print("A wrong code makes every pending code stop working; then ask for a new one.", file=sys.stderr)
    return 0


async def _on(args: argparse.Namespace, services: AppServices) -> int:
    answer = await call_running_host(services, "POST", f"/api/channels/{args.channel}/on")
    if answer is None:
        raise ConfigError(channels.START_FIRST)
    return _print_view(args, answer)


async def _off(args: argparse.Namespace, services: AppServices) -> int:
    answer = await call_running_host(services, "POST", f"/api/channels/{args.channel}/off",
                                      json={"forget": args.forget})
    if answer is None:
        found = registry.manifest(args.channel)
        if args.forget and found is not None and found.token_action:
            await open_secrets(services)
        answer = jsonable(await channels.disable_channel(services, args.channel, forget=args.forget))
    return _print_view(args, answer)


def _print_view(args: argparse.Namespace, view: dict[str, Any]) -> int:
    if args.json:
        print_json(view)
    else:
        account = view["status"].get("account")
        print(f"{view['title']}: {_words(view['status']['state'])}" + (f" ({account})" if account else ""))
    return 0
