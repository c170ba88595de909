"""`nanoclaw secrets list|status|set|delete`: the app's secrets by name; values go in by stdin or a hidden prompt.

A value is never taken from the command line: argv is visible to every user (``ps``) and kept in shell history.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from nanoclaw_app.commands.output import json_flag, print_json, print_table
from nanoclaw_app.errors import ConfigError
from nanoclaw_app.runfile import read_run_file
from nanoclaw_app.secrets.backend import PASSPHRASE_ENV
from nanoclaw_app.services import secrets
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.services.offline import open_secrets


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `secrets` subcommands."""
    parser = sub.add_parser("secrets", help="API keys and tokens (names only; values are never shown)")
    commands = parser.add_subparsers(dest="secrets_command", required=True)
    listing = commands.add_parser("list", help="secret names and whether each is set")
    json_flag(listing)
    listing.set_defaults(run=_list)
    status = commands.add_parser("status", help="where secrets are kept (OS keyring or encrypted file)")
    json_flag(status)
    status.set_defaults(run=_status)
    setter = commands.add_parser("set", help="store a secret; the value is read from stdin or a hidden prompt")
    setter.add_argument("name", help="e.g. anthropic_api_key")
    setter.add_argument("--label", default="", help="a description shown next to the name")
    setter.set_defaults(run=_set)
    deleter = commands.add_parser("delete", help="delete a secret")
    deleter.add_argument("name")
    deleter.set_defaults(run=_delete)


def _hidden(prompt: str) -> str:
    """A hidden prompt on a terminal; otherwise the whole of stdin (a pipe, a file)."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.read()


async def _open(services: AppServices) -> None:
    """Open the store as the host does; on a terminal, ask for the passphrase the environment did not give."""
    await open_secrets(services)
    if services.secrets.available or not sys.stdin.isatty():
        return
    state = await secrets.secret_status(services)
    if state.locked:
        await open_secrets(services, getpass.getpass("Passphrase of the secret store: "))
    elif state.needs_passphrase_setup:
        print(f"No OS keyring works here ({state.reason.split(';')[0]}).")
        print("Secrets will be kept in an encrypted file; choose a passphrase (NanoClaw asks for it at start, or set "
              f"{PASSPHRASE_ENV}). A lost passphrase means entering every key again.")
        first = getpass.getpass("New passphrase: ")
        if getpass.getpass("Same passphrase again: ") != first:
            raise ConfigError("the two passphrases differ; nothing was changed")
        await secrets.create_passphrase(services, first)


async def _list(args: argparse.Namespace, services: AppServices) -> int:
    await open_secrets(services)
    items = await secrets.list_secrets(services)
    if args.json:
        print_json(items)
        return 0
    rows = [{"name": s.name, "label": s.label,
             "set": "locked" if s.is_set is None else ("yes" if s.is_set else "no")} for s in items]
    print_table(rows, ["name", "label", "set"], empty="no secrets stored")
    if not services.secrets.available:
        print(f"note: {services.secrets.unavailable_reason}", file=sys.stderr)
    return 0


async def _status(args: argparse.Namespace, services: AppServices) -> int:
    await open_secrets(services)
    state = await secrets.secret_status(services)
    if args.json:
        print_json(state)
    elif state.kind == "none":
        print(f"secrets cannot be used yet: {state.reason}")
    else:
        print(f"secrets are kept in: {state.backend} ({state.kind.replace('_', ' ')})")
    return 0


async def _set(args: argparse.Namespace, services: AppServices) -> int:
    secrets.check_name(args.name)
    await _open(services)
    value = _hidden(f"Value of {args.name} (hidden): ")
    await secrets.put_secret(services, args.name, value, label=args.label)
    print(f"stored {args.name}")
    _restart_hint(services)
    return 0


async def _delete(args: argparse.Namespace, services: AppServices) -> int:
    await _open(services)
    await secrets.delete_secret(services, args.name)
    print(f"deleted {args.name}")
    _restart_hint(services)
    return 0


def _restart_hint(services: AppServices) -> None:
    # The running host caches values it has read; a restart makes it read the store again.
    if read_run_file(services.settings.paths) is not None:
        print("NanoClaw is running: restart it if it already used the old value", file=sys.stderr)
