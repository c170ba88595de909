"""``nanoclaw channels list|telegram-token|pair|on|off``: the phone channels from a terminal.

Channels run inside NanoClaw, so while it runs every command goes to it (signed in with a one-time session, like
``nanoclaw approvals``) and its open pages update. Without it, the listing and turning a channel off work on the
database, a Telegram token is checked and saved so Telegram starts with NanoClaw, and what needs a live link (a pairing
code, turning a channel on) asks to start NanoClaw first. The token is read from stdin or a hidden prompt, never from
the command line (argv is visible to every user and kept in shell history).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from nanoclaw_app.channels.registry import PHONE_CHANNELS
from nanoclaw_app.commands.host_api import call_running_host
from nanoclaw_app.commands.output import json_flag, jsonable, print_json, print_table
from nanoclaw_app.errors import ConfigError
from nanoclaw_app.services import channels
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.services.offline import open_secrets

_NAMES = tuple(k.name for k in PHONE_CHANNELS)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``channels`` subcommands."""
    parser = sub.add_parser("channels", help="WhatsApp and Telegram: health, token, pairing codes")
    verbs = parser.add_subparsers(dest="channels_command", required=True)

    listing = verbs.add_parser("list", help="each phone channel with its health and paired chats")
    json_flag(listing)
    listing.set_defaults(run=_list)

    token = verbs.add_parser("telegram-token",
                             help="check and save the bot token from @BotFather (read from stdin or a hidden prompt)")
    json_flag(token)
    token.set_defaults(run=_telegram_token)

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
                     help="also delete the Telegram token, or unlink the WhatsApp device")
    json_flag(off)
    off.set_defaults(run=_off)


def _words(state: str) -> str:
    return channels.STATE_WORDS.get(state, state)


def _row(view: dict[str, Any]) -> dict[str, Any]:
    status = view["status"]
    chats = ", ".join(f"{c['title']} ({', '.join(c['agents']) or 'no agent'})" for c in view["chats"])
    detail = status.get("detail") or ""
    if view.get("mode"):
        detail = f"{view['mode']} number" + (f"; {detail}" if detail else "")
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


def _read_token() -> str:
    """A hidden prompt on a terminal; otherwise the whole of stdin (a pipe, a file)."""
    if sys.stdin.isatty():
        return getpass.getpass("Bot token from @BotFather (hidden): ")
    return sys.stdin.read()


async def _telegram_token(args: argparse.Namespace, services: AppServices) -> int:
    token = channels.clean_token(_read_token())
    answer = await call_running_host(services, "POST", "/api/channels/telegram/token", json={"token": token})
    if answer is None:
        await open_secrets(services)
        result = await channels.set_telegram_token(services, token)
        answer = jsonable(result)
    if args.json:
        print_json(answer)
        return 0
    bot = answer["bot"]
    print(f"Telegram bot @{bot['username']} ({bot['name']}) checked and saved")
    if answer["started"]:
        print("Telegram is connected; pair your chat with `nanoclaw channels pair telegram`")
    else:
        print("NanoClaw is not running: Telegram connects when it starts")
    if answer.get("privacy_note"):
        print(f"note: {answer['privacy_note']}")
    return 0


async def _pair(args: argparse.Namespace, services: AppServices) -> int:
    answer = await call_running_host(services, "POST", f"/api/channels/{args.channel}/pairing-code", json={})
    if answer is None:
        raise ConfigError(channels.START_FIRST)
    if args.json:
        print_json(answer)
        return 0
    code, to = answer["code"], answer.get("send_to")
    if args.channel == "telegram":
        where = f"to {to}" if to else "to your bot"
        print(f"Send {code} {where} from your Telegram account (in a group: {to or '@yourbot'} {code}).")
    else:
        where = f"to {to}" if to else "to the assistant's number"
        print(f"Send {code} {where} from your own WhatsApp.")
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
        if args.forget and args.channel == "telegram":
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
