"""``nanoclaw people list|grant|revoke|add-member|remove-member|rename``: the people page from a terminal."""

from __future__ import annotations

import argparse

from nanoclaw_app.commands.output import json_flag, print_json, print_table
from nanoclaw_app.services import people
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.services.people import ROLES, PersonView, RoleView

_BY = "cli"
"""Recorded as who granted or added, next to the app's own "app"."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``people`` subcommands."""
    parser = sub.add_parser("people", help="people, their roles, and which agents they may talk to")
    verbs = parser.add_subparsers(dest="people_command", required=True)

    listing = verbs.add_parser("list", help="everyone NanoClaw knows, with roles and memberships")
    json_flag(listing)
    listing.set_defaults(run=_list)

    for name, run, help_text in (("grant", _grant, "make someone owner or admin"),
                                 ("revoke", _revoke, "take a role away (never from the last owner)")):
        verb = verbs.add_parser(name, help=help_text)
        verb.add_argument("user", help="user id (e.g. telegram:123) or display name")
        verb.add_argument("role", choices=ROLES)
        verb.add_argument("--agent", help="admin of this agent only (id or name); without it, of every agent")
        json_flag(verb)
        verb.set_defaults(run=run)

    add = verbs.add_parser("add-member", help="let someone talk to an agent")
    add.add_argument("user", help="user id or display name; an unknown <channel>:<handle> is added")
    add.add_argument("agent", help="agent id or name")
    json_flag(add)
    add.set_defaults(run=_add_member)

    remove = verbs.add_parser("remove-member", help="stop someone talking to an agent")
    remove.add_argument("user", help="user id or display name")
    remove.add_argument("agent", help="agent id or name")
    json_flag(remove)
    remove.set_defaults(run=_remove_member)

    rename = verbs.add_parser("rename", help="change the name shown for someone")
    rename.add_argument("user", help="user id or display name")
    rename.add_argument("name", help="the new name")
    json_flag(rename)
    rename.set_defaults(run=_rename)



def role_label(role: RoleView) -> str:
    """``owner``, ``admin`` (of everything) or ``admin of <agent>``."""
    if role.role == "admin" and role.agent_group_id:
        return f"admin of {role.agent_name}"
    return role.role


def _show(found: list[PersonView], as_json: bool) -> None:
    if as_json:
        print_json(found)
        return
    print_table(
        [{"id": p.id, "name": p.display_name or "", "roles": ", ".join(role_label(r) for r in p.roles),
          "may talk to": ", ".join(m.agent_name for m in p.memberships)} for p in found],
        ["id", "name", "roles", "may talk to"],
        empty="nobody yet: people appear when they write to NanoClaw",
    )


async def _list(args: argparse.Namespace, services: AppServices) -> int:
    _show(await people.list_people(services), args.json)
    return 0


async def _grant(args: argparse.Namespace, services: AppServices) -> int:
    _show([await people.grant(services, args.user, args.role, args.agent, by=_BY)], args.json)
    return 0


async def _revoke(args: argparse.Namespace, services: AppServices) -> int:
    _show([await people.revoke(services, args.user, args.role, args.agent)], args.json)
    return 0


async def _add_member(args: argparse.Namespace, services: AppServices) -> int:
    _show([await people.add_member(services, args.user, args.agent, by=_BY)], args.json)
    return 0


async def _remove_member(args: argparse.Namespace, services: AppServices) -> int:
    _show([await people.remove_member(services, args.user, args.agent)], args.json)
    return 0


async def _rename(args: argparse.Namespace, services: AppServices) -> int:
    _show([await people.rename(services, args.user, args.name)], args.json)
    return 0
