"""`nanoclaw settings show|set`: the settings the app's Settings page edits, through the same service layer."""

from __future__ import annotations

import argparse
import getpass
import sys

from nanoclaw_app.commands.host_api import call_running_host
from nanoclaw_app.commands.output import json_flag, print_json, print_table
from nanoclaw_app.errors import UserError
from nanoclaw_app.services import app_settings
from nanoclaw_app.services.app_settings import APP_EDITABLE, NEEDS_RESTART, AppSettings, editable
from nanoclaw_app.services.context import AppServices


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `settings` subcommands."""
    parser = sub.add_parser("settings", help="timezone, LAN access, spend cap, agent image, CA certificates, "
                                             "Anthropic address")
    commands = parser.add_subparsers(dest="settings_command", required=True)
    show = commands.add_parser("show", help="the settings and whether a restart is needed")
    json_flag(show)
    show.set_defaults(run=_show)
    setter = commands.add_parser("set", help="change one setting", description=(
        "Names: " + ", ".join(editable()) + ". Turning lan_access on asks for the LAN password when none is set "
        "(hidden prompt, or stdin when piped)."))
    setter.add_argument("name", choices=editable(), metavar="name")
    setter.add_argument("value")
    json_flag(setter)
    setter.set_defaults(run=_set)


def _print(view: AppSettings, *, as_json: bool) -> None:
    if as_json:
        print_json(view)
        return
    values = {**{name: getattr(view, name) for name in editable() if hasattr(view, name)}, **view.channel_settings}
    fixed = set(view.fixed_by_environment)
    rows = [{"setting": name, "value": value, "note": "from the environment" if name in fixed else ""}
            for name, value in values.items()]
    rows.append({"setting": "lan_password", "value": "set" if view.lan_password_set else "not set", "note": ""})
    print_table(rows, ["setting", "value", "note"])
    if view.restart_needed:
        print(f"restart NanoClaw to apply: {', '.join(view.restart_needed)}")


async def _show(args: argparse.Namespace, services: AppServices) -> int:
    _print(await app_settings.read_settings(services), as_json=args.json)
    return 0


async def _set(args: argparse.Namespace, services: AppServices) -> int:
    value = app_settings.parse_value(args.name, args.value)
    if args.name == "lan_access":
        password = None
        if value and not await services.auth.has_password():
            password = _new_password()
        # A running app applies it at once (switching off shuts LAN devices out before its restart); else directly.
        answer = await call_running_host(services, "POST", "/api/settings/lan",
                                         json={"enabled": value, "password": password})
        view = AppSettings(**answer) if answer is not None else await app_settings.set_lan_access(
            services, value, password)
    elif args.name not in NEEDS_RESTART:
        # A running app takes it at once (its gateway, its channels); written here, it would wait for a restart.
        body = {args.name: value} if args.name in APP_EDITABLE else {"channel_settings": {args.name: value}}
        answer = await call_running_host(services, "PUT", "/api/settings", json=body)
        view = AppSettings(**answer) if answer is not None else await app_settings.update_settings(
            services, {args.name: value})
    else:
        view = await app_settings.update_settings(services, {args.name: value})
    _print(view, as_json=args.json)
    return 0


def _new_password() -> str:
    """The LAN password: typed twice on a terminal, else one line of stdin."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("LAN password for other devices (at least 10 characters): ")
    if getpass.getpass("Same password again: ") != first:
        raise UserError("the two passwords differ; nothing was changed")
    return first
