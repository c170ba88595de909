"""``nanoclaw credentials list|add|edit|remove|test``: the Credentials page from a terminal.

A value is read from stdin or a hidden prompt, never from the command line (``ps`` and shell history show argv).
While NanoClaw runs, changes go through it, so its egress proxy picks them up at once and its cached values stay
true; otherwise the command works on this machine's database and secret store directly.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import quote

from nanoclaw_app.commands.host_api import call_running_host
from nanoclaw_app.commands.output import json_flag, print_json, print_table
from nanoclaw_app.commands.secrets import _hidden, _open
from nanoclaw_app.egress.policy import INJECTION_KINDS
from nanoclaw_app.services import credentials
from nanoclaw_app.services.agents.lookup import agent_by_ref
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.services.credentials import POLICIES, CredentialInput, CredentialView, TestResult


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``credentials`` subcommands."""
    parser = sub.add_parser("credentials", help="keys the agents use for other services (values are never shown)")
    verbs = parser.add_subparsers(dest="credentials_command", required=True)

    listing = verbs.add_parser("list", help="every credential, where it is sent and whether its value is set")
    json_flag(listing)
    listing.set_defaults(run=_list)

    add = verbs.add_parser("add", help="add a credential; the value is read from stdin or a hidden prompt")
    add.add_argument("name", help="what you call it, e.g. GitHub")
    add.add_argument("--host", required=True, help="where it is sent: api.github.com, *.example.com, host:port")
    _options(add, defaults=True)
    json_flag(add)
    add.set_defaults(run=_add)

    edit = verbs.add_parser("edit", help="change a credential; its value stays unless --new-value")
    edit.add_argument("credential", help="its name or id")
    edit.add_argument("--name", help="a new name")
    edit.add_argument("--host", help="where it is sent")
    _options(edit, defaults=False)
    edit.add_argument("--new-value", action="store_true", help="replace the value (read from stdin or a hidden prompt)")
    json_flag(edit)
    edit.set_defaults(run=_edit)

    remove = verbs.add_parser("remove", help="remove a credential and its value")
    remove.add_argument("credential", help="its name or id")
    remove.set_defaults(run=_remove)

    test = verbs.add_parser("test", help="send one request with the credential to its service and say what came back")
    test.add_argument("credential", help="its name or id")
    json_flag(test)
    test.set_defaults(run=_test)


def _options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    parser.add_argument("--kind", choices=INJECTION_KINDS, default="bearer" if defaults else None,
                        help="how it is added (default bearer)")
    parser.add_argument("--field", default="" if defaults else None,
                        help="the header name (--kind header) or query parameter (--kind query)")
    parser.add_argument("--agents", default="all" if defaults else None,
                        help='"all" (default) or agent names or ids, separated by commas')
    parser.add_argument("--policy", choices=POLICIES, default="allow" if defaults else None,
                        help="allow: use freely; ask: ask each time; ask_once: ask once per conversation")
    parser.add_argument("--test-url", default="" if defaults else None,
                        help="an https address on the host that needs the credential, for `test`")


async def _agents(services: AppServices, text: str) -> str | list[str]:
    if text.strip().lower() == "all":
        return "all"
    return [(await agent_by_ref(services.ctx.db, ref)).id for ref in text.split(",") if ref.strip()]


def _show(found: list[CredentialView], as_json: bool) -> None:
    if as_json:
        print_json(found)
        return
    print_table(
        [{"name": c.name, "host": c.host_pattern, "added as": c.how,
          "agents": "all" if c.all_agents else ", ".join(a.name for a in c.agents) or "none",
          "use": c.policy_words, "value": c.secret} for c in found],
        ["name", "host", "added as", "agents", "use", "value"],
        empty="no credentials yet: `nanoclaw credentials add NAME --host HOST` adds one",
    )


def _views(answer: dict[str, Any] | list[Any]) -> list[CredentialView]:
    items = answer.get("credentials", []) if isinstance(answer, dict) else answer
    return [CredentialView(**{**item, "agents": [credentials.AgentName(**a) for a in item["agents"]]})
            for item in items]


async def _list(args: argparse.Namespace, services: AppServices) -> int:
    answer = await call_running_host(services, "GET", "/api/credentials")
    if answer is not None:
        _show(_views(answer), args.json)
        return 0
    await _open(services)
    _show(await credentials.list_credentials(services), args.json)
    if not services.secrets.available:
        print(f"note: {services.secrets.unavailable_reason}", file=sys.stderr)
    return 0


def _value(name: str) -> str:
    return _hidden(f"Value of {name} (hidden; for basic: user:password): ")


def _path(credential_id: str, tail: str = "") -> str:
    return f"/api/credentials/{quote(credential_id, safe='')}{tail}"


async def _add(args: argparse.Namespace, services: AppServices) -> int:
    spec = CredentialInput(name=args.name, host_pattern=args.host, kind=args.kind, field=args.field,
                           agents=await _agents(services, args.agents), policy=args.policy, test_url=args.test_url)
    running = await call_running_host(services, "GET", "/health")
    if running is None:
        await _open(services)
    value = _value(args.name)
    if running is not None:
        answer = await call_running_host(services, "POST", "/api/credentials", json={**vars(spec), "value": value})
        if answer is not None:
            _show(_views([answer]), args.json)
            return 0
        await _open(services)
    _show([await credentials.add(services, spec, value)], args.json)
    return 0


async def _edit(args: argparse.Namespace, services: AppServices) -> int:
    current = await credentials.get_credential(services, args.credential)
    spec = CredentialInput(
        name=args.name if args.name is not None else current.name,
        host_pattern=args.host if args.host is not None else current.host_pattern,
        kind=args.kind if args.kind is not None else current.kind,
        field=args.field if args.field is not None else current.field,
        agents=await _agents(services, args.agents) if args.agents is not None
        else ("all" if current.all_agents else [a.id for a in current.agents]),
        policy=args.policy if args.policy is not None else current.policy,
        test_url=args.test_url if args.test_url is not None else current.test_url,
    )
    running = await call_running_host(services, "GET", "/health")
    if running is None and args.new_value:
        await _open(services)
    value = _value(spec.name) if args.new_value else ""
    if running is not None:
        answer = await call_running_host(services, "PUT", _path(current.id), json={**vars(spec), "value": value})
        if answer is not None:
            _show(_views([answer]), args.json)
            return 0
    _show([await credentials.edit(services, current.id, spec, value)], args.json)
    return 0


async def _remove(args: argparse.Namespace, services: AppServices) -> int:
    current = await credentials.find(services, args.credential)
    if await call_running_host(services, "DELETE", _path(current.id)) is None:
        await _open(services)
        await credentials.remove(services, current.id)
    print(f"removed {current.name}")
    return 0


async def _test(args: argparse.Namespace, services: AppServices) -> int:
    current = await credentials.find(services, args.credential)
    answer = await call_running_host(services, "POST", _path(current.id, "/test"), json={})
    if answer is not None:
        result = TestResult(**answer)
    else:
        await _open(services)
        result = await credentials.run_test(services, current.id)
    if args.json:
        print_json(result)
    else:
        print(result.message)
    return 0 if result.ok else 1
