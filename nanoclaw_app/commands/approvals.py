"""``nanoclaw approvals list|approve|reject``: the approval queue from a terminal.

While NanoClaw runs, a decision is sent to it (signed in with a one-time link, like ``nanoclaw open``): only the running
host has the chat channels to replay a held message, edit the card and restart a container, and its open pages
refresh. Without a running host the decision is made here, where what needs channels is refused with the reason.
"""

from __future__ import annotations

import argparse
from urllib.parse import quote

from nanoclaw_app.commands.host_api import call_running_host
from nanoclaw_app.commands.output import json_flag, print_json, print_table
from nanoclaw_app.services import approvals
from nanoclaw_app.services.approvals import AGENT, CHANNEL, SENDER, Decision
from nanoclaw_app.services.context import AppServices


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``approvals`` subcommands."""
    parser = sub.add_parser("approvals", help="requests waiting for an owner's decision")
    verbs = parser.add_subparsers(dest="approvals_command", required=True)

    listing = verbs.add_parser("list", help="every waiting request, oldest first")
    listing.add_argument("--kind", choices=(AGENT, SENDER, CHANNEL), help="only one sort of request")
    json_flag(listing)
    listing.set_defaults(run=_list)

    approve = verbs.add_parser("approve", help="approve a request, as a click on its card would")
    approve.add_argument("id", help="the request id from `nanoclaw approvals list`")
    approve.add_argument("--agent", help="for a new chat: the agent (id or name) that should answer there")
    json_flag(approve)
    approve.set_defaults(run=_approve)

    reject = verbs.add_parser("reject", help="reject a request, as a click on its card would")
    reject.add_argument("id", help="the request id from `nanoclaw approvals list`")
    json_flag(reject)
    reject.set_defaults(run=_reject, agent=None)


async def _list(args: argparse.Namespace, services: AppServices) -> int:
    queue = await approvals.pending(services, args.kind)
    if args.json:
        print_json(queue.items)
        return 0
    print_table(
        [{"id": i.id, "kind": i.kind, "title": i.title, "request": i.summary, "asked": i.created_at[:16],
          "expires": i.expires_at[:16]} for i in queue.items],
        ["id", "kind", "title", "request", "asked", "expires"],
        empty="nothing is waiting for a decision",
    )
    return 0


async def _approve(args: argparse.Namespace, services: AppServices) -> int:
    return await _decide(args, services, approve=True)


async def _reject(args: argparse.Namespace, services: AppServices) -> int:
    return await _decide(args, services, approve=False)


async def _decide(args: argparse.Namespace, services: AppServices, *, approve: bool) -> int:
    # Only the running host can replay a held message, edit the card and wake a container: ask it when it runs.
    path = f"/api/approvals/{quote(args.id, safe='')}/{'approve' if approve else 'reject'}"
    body = {"agent_group_id": args.agent} if approve else None
    answer = await call_running_host(services, "POST", path, json=body)
    if answer is not None:
        decision = Decision(**{k: answer[k] for k in ("id", "kind", "outcome", "message", "count")})
    else:
        decision = await approvals.decide(services, args.id, approve=approve, agent_ref=args.agent)
    if args.json:
        print_json(decision)
    else:
        print(f"{decision.outcome}: {decision.message}")
    return 0
