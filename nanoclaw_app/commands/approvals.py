"""``nanoclaw approvals list|approve|reject``: the approval queue from a terminal.

While NanoClaw runs, a decision is sent to it (signed in with a one-time link, like ``nanoclaw open``): only the running
host has the chat channels to replay a held message, edit the card and restart a container, and its open pages
refresh. Without a running host the decision is made here, where what needs channels is refused with the reason.
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING
from urllib.parse import quote

from nanoclaw_app.commands.output import json_flag, print_json, print_table
from nanoclaw_app.errors import NotFound, TransientError, UserError
from nanoclaw_app.services import approvals
from nanoclaw_app.services.approvals import AGENT, CHANNEL, SENDER, Decision
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.web.runfile import read_run_file

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

HTTP_TIMEOUT = 120.0
"""Approving a package install rebuilds nothing here, but a replayed message may wait for a container to start."""


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
    running = read_run_file(services.settings.paths)
    if running is not None:
        decision = await _via_running_app(services, str(running["url"]), args.id, approve=approve, agent=args.agent)
    else:
        decision = await approvals.decide(services, args.id, approve=approve, agent_ref=args.agent)
    if args.json:
        print_json(decision)
    else:
        print(f"{decision.outcome}: {decision.message}")
    return 0


async def _via_running_app(
    services: AppServices, url: str, approval_id: str, *, approve: bool, agent: str | None
) -> Decision:
    """Decide in the running host through its API, signed in for this one call."""
    import httpx

    from nanoclaw_app.web.auth import issue_login_token

    token = await issue_login_token(services.ctx.db)
    path = f"/api/approvals/{quote(approval_id, safe='')}/{'approve' if approve else 'reject'}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT) as client:
            signed_in = await client.get("/login", params={"token": token}, follow_redirects=False)
            if not signed_in.is_redirect:
                raise TransientError(f"the running NanoClaw at {url} refused the sign-in ({signed_in.status_code})")
            await client.get("/health")  # any page sets the CSRF cookie writes must echo
            headers = {"x-csrftoken": client.cookies.get("nanoclaw_csrf") or ""}
            try:
                response = await client.post(path, json={"agent_group_id": agent} if approve else None,
                                             headers=headers)
            finally:
                await _sign_out(client, headers)
    except httpx.HTTPError as err:
        raise TransientError(f"the running NanoClaw at {url} did not answer ({err}); is it still starting?") from err
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.is_success:
        return Decision(**{k: body[k] for k in ("id", "kind", "outcome", "message", "count")})
    message = str(body.get("error") or f"the running NanoClaw answered {response.status_code}")
    if response.status_code == 404:
        raise NotFound(message)
    if response.status_code < 500:
        raise UserError(message)
    raise TransientError(message)


async def _sign_out(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """End the session this command opened; a failure only leaves it to expire."""
    import httpx

    try:
        await client.post("/api/logout", headers=headers)
    except httpx.HTTPError:
        log.warning("could not sign the command's session out; it expires on its own", exc_info=True)
