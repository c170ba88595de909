"""``nanoclaw chats list|policy|wire|unwire|set``: the chats page from a terminal."""

from __future__ import annotations

import argparse

from nanoclaw_app.commands.output import json_flag, print_json, print_table
from nanoclaw_app.db.messaging import ENGAGE_MODES, IGNORED_POLICIES, SENDER_POLICIES, SENDER_SCOPES, SESSION_MODES
from nanoclaw_app.services import chats
from nanoclaw_app.services.chats import ChatView, WiringChanges
from nanoclaw_app.services.context import AppServices


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``chats`` subcommands."""
    parser = sub.add_parser("chats", help="chats, who may write there, and which agents answer")
    verbs = parser.add_subparsers(dest="chats_command", required=True)

    listing = verbs.add_parser("list", help="every chat with its wired agents")
    json_flag(listing)
    listing.set_defaults(run=_list)

    policy = verbs.add_parser("policy", help="what happens when someone new writes in a chat")
    policy.add_argument("chat", help="chat id, <channel>:<platform id> or name")
    policy.add_argument("policy", choices=SENDER_POLICIES,
                        help="strict: ignore them; request_approval: ask an owner; public: let anyone in")
    json_flag(policy)
    policy.set_defaults(run=_policy)

    wire = verbs.add_parser("wire", help="let an agent answer in a chat")
    wire.add_argument("chat", help="chat id, <channel>:<platform id> or name")
    wire.add_argument("agent", help="agent id or name")
    _wiring_options(wire)
    json_flag(wire)
    wire.set_defaults(run=_wire)

    setter = verbs.add_parser("set", help="change how an agent answers in a chat")
    setter.add_argument("chat", help="chat id, <channel>:<platform id> or name")
    setter.add_argument("agent", help="agent id or name")
    _wiring_options(setter)
    json_flag(setter)
    setter.set_defaults(run=_set)

    unwire = verbs.add_parser("unwire", help="stop an agent answering in a chat")
    unwire.add_argument("chat", help="chat id, <channel>:<platform id> or name")
    unwire.add_argument("agent", help="agent id or name")
    json_flag(unwire)
    unwire.set_defaults(run=_unwire)



def _wiring_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engage", choices=ENGAGE_MODES, help="when the agent answers")
    parser.add_argument("--pattern", help="regular expression for --engage pattern ('.' answers every message)")
    parser.add_argument("--senders", choices=SENDER_SCOPES, help="all: everyone allowed in the chat; known: only "
                        "people allowed to use this agent")
    parser.add_argument("--ignored", choices=IGNORED_POLICIES, help="what happens to messages it does not answer")
    parser.add_argument("--session", choices=SESSION_MODES, help="how conversations are kept apart")
    parser.add_argument("--priority", type=int, help="higher answers first when several agents are wired")


def _changes(args: argparse.Namespace) -> WiringChanges:
    return WiringChanges(engage_mode=args.engage, engage_pattern=args.pattern, sender_scope=args.senders,
                         ignored_message_policy=args.ignored, session_mode=args.session, priority=args.priority)


def _show(chat_list: list[ChatView], as_json: bool) -> None:
    if as_json:
        print_json(chat_list)
        return
    rows: list[dict[str, object]] = []
    for chat in chat_list:
        state = "rejected" if chat.denied_at else ("waiting for an agent" if chat.pending_registration else "")
        base: dict[str, object] = {"id": chat.id, "chat": chat.title, "channel": chat.channel_type,
                "type": "group" if chat.is_group else "direct", "new senders": chat.unknown_sender_policy,
                "state": state}
        if not chat.wirings:
            rows.append({**base, "agent": "—"})
        for w in chat.wirings:
            engage = f"pattern {w.engage_pattern}" if w.engage_mode == "pattern" else w.engage_mode
            rows.append({**base, "agent": w.agent_name, "engage": engage, "senders": w.sender_scope,
                         "ignored": w.ignored_message_policy, "session": w.session_mode, "priority": w.priority})
            base = dict.fromkeys(base, "")  # later rows of the same chat show only the agent
    print_table(rows, ["id", "chat", "channel", "type", "new senders", "state", "agent", "engage", "senders",
                       "ignored", "session", "priority"],
                empty="no chats yet: one appears when someone writes to NanoClaw")


async def _list(args: argparse.Namespace, services: AppServices) -> int:
    _show(await chats.list_chats(services), args.json)
    return 0


async def _policy(args: argparse.Namespace, services: AppServices) -> int:
    _show([await chats.set_policy(services, args.chat, args.policy)], args.json)
    return 0


async def _wire(args: argparse.Namespace, services: AppServices) -> int:
    _show([await chats.wire(services, args.chat, args.agent, _changes(args))], args.json)
    return 0


async def _set(args: argparse.Namespace, services: AppServices) -> int:
    wiring = await chats.wiring_between(services, args.chat, args.agent)
    _show([await chats.update_wiring(services, wiring.id, _changes(args))], args.json)
    return 0


async def _unwire(args: argparse.Namespace, services: AppServices) -> int:
    wiring = await chats.wiring_between(services, args.chat, args.agent)
    _show([await chats.unwire(services, wiring.id)], args.json)
    return 0
