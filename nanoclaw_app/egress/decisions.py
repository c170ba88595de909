"""The app's answers to the egress proxy: which sites an agent may reach, which credential it gets, who is asked.

Credentials and the agents' site lists are read from the database and kept for a second, so a change on the
Credentials or agent page applies within a second without the proxy knowing either page. Values come from the secret
store at the moment of use and are never kept here. A request under "ask" is held while an approval card waits in the
approver's DM (the usual picking: scoped admins, global admins, owners, the same channel kind first); its outcome is
polled from the approval row, so a click on any channel, or the sweep's expiry, decides it. Activity rows are written
in batches by one owned task, so a busy agent costs one insert per half second, not one per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import cast

from nanoclaw_app.core.approvals.cards import display_name
from nanoclaw_app.core.approvals.service import ApprovalService
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.events import EventBus
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import credentials as credentials_db
from nanoclaw_app.db import egress_events
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.approvals import PendingApproval
from nanoclaw_app.db.credentials import Credential
from nanoclaw_app.db.database import Database
from nanoclaw_app.egress.policy import (
    Caller,
    ConnectPlan,
    EgressRecord,
    Injection,
    InjectionKind,
    RequestVerdict,
    host_matches,
    site_allows,
)
from nanoclaw_app.secrets.store import SecretStore, SecretsUnavailable
from nanoclaw_app.timeutil import now_iso

log = logging.getLogger(__name__)

ACTION = "egress_request"
"""The approval action of a held credentialed request."""
CACHE_SECONDS = 1.0
POLL_SECONDS = 0.25
"""How often a held request looks at its approval row (a click is applied by whichever channel got it)."""
FLUSH_SECONDS = 0.5
MAX_QUEUED = 5000
"""Activity rows kept while the database is slow; past it the oldest are dropped (and that is logged)."""


@dataclass(frozen=True, slots=True)
class _Agent:
    name: str
    mode: str
    sites: tuple[str, ...]


class EgressDecisions:
    """Implements ``EgressPolicy`` over the database, the secret store and the approval cards."""

    def __init__(self, *, db: Database, secrets: SecretStore, approval_seconds: Callable[[], float],
                 events: EventBus | None = None) -> None:
        self._db = db
        self._events = events
        self._secrets = secrets
        self._approvals: ApprovalService | None = None
        self._approval_seconds = approval_seconds
        self._credentials: tuple[float, list[Credential]] = (0.0, [])
        self._agents: dict[str, tuple[float, _Agent]] = {}
        self._asking: dict[tuple[str, str], asyncio.Task[tuple[str, str | None]]] = {}
        """Held "ask once" requests per (credential, session): parallel requests share one card."""
        self._queue: list[dict[str, object]] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def use_approvals(self, approvals: ApprovalService) -> None:
        """Ask through these approvals (made after the runtime, which needs the proxy): before the host starts."""
        approvals.register_handler(ACTION, self._on_approved, live=True)
        self._approvals = approvals

    def start(self) -> None:
        """Start the activity writer."""
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_forever(), name="egress-activity-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop the writer."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        await self._flush()
        for task in list(self._asking.values()):
            task.cancel()

    # -- EgressPolicy --------------------------------------------------------------------------------------------

    async def plan_connect(self, caller: Caller, host: str, port: int) -> ConnectPlan:
        """Refuse a site off the agent's list; intercept when one of its credentials covers host:port."""
        agent = await self._agent(caller.agent_group_id)
        if agent is None:
            return ConnectPlan(refused="This agent no longer exists.")
        if agent.mode == "sites" and not site_allows(agent.sites, host):
            return ConnectPlan(refused=(
                f"{host} is not on the list of sites {agent.name} may reach. Its owner can add it under Internet "
                "access on the agent's page in NanoClaw."))
        return ConnectPlan(intercept=self._credential_for(await self._all_credentials(), caller, host, port)
                           is not None)

    async def authorize(self, caller: Caller, method: str, host: str, port: int, path: str) -> RequestVerdict:
        """The agent's credential for this host, after the approval its policy asks for."""
        credential = self._credential_for(await self._all_credentials(), caller, host, port)
        if credential is None:
            return RequestVerdict()
        named = RequestVerdict(credential_id=credential.id, credential_name=credential.name)
        injection = await self._injection(credential)
        if isinstance(injection, str):
            return replace(named, refused=injection, decision="refused")
        if credential.policy == "allow":
            return replace(named, injection=injection)
        if credential.policy == "ask_once" and await credentials_db.has_grant(self._db, credential.id,
                                                                             caller.session_id):
            return replace(named, injection=injection)
        status, by = await self._ask(caller, credential, method, host, port, path)
        request = _request(method, host, port, path)
        if status == "approved":
            if credential.policy == "ask_once":
                await credentials_db.add_grant(self._db, credential.id, caller.session_id, by)
            return replace(named, injection=injection, decision="approved", approved_by=by)
        if status == "rejected":
            who = await display_name(self._db, by) if by else "The approver"
            return replace(named, refused=f"{who} denied the use of the {credential.name} credential for {request}.",
                           decision="denied", approved_by=by)
        if status == "expired":
            minutes = max(1, round(self._approval_seconds() / 60))
            return replace(named, refused=(
                f"Nobody answered the request to use the {credential.name} credential for {request} within "
                f"{minutes} minute{'s' if minutes != 1 else ''}, so it was refused. Ask the user before trying again."),
                decision="expired")
        return replace(named, refused=(
            f"The {credential.name} credential needs an owner's or admin's approval, and none can be reached "
            "right now."), decision="refused")

    def record(self, record: EgressRecord) -> None:
        """Queue one activity row; the writer task stores it."""
        if len(self._queue) >= MAX_QUEUED:
            del self._queue[: len(self._queue) - MAX_QUEUED + 1]
            log.warning("egress activity is written slower than it comes; the oldest unwritten rows were dropped")
        self._queue.append({
            "at": now_iso(), "agent_group_id": record.caller.agent_group_id, "session_id": record.caller.session_id,
            "kind": record.kind, "credential_id": record.credential_id, "credential_name": record.credential_name,
            "method": record.method, "host": record.host, "port": record.port, "path": record.path,
            "decision": record.decision, "approved_by": record.approved_by, "status_code": record.status_code,
            "reason": record.reason,
        })
        if len(self._queue) >= 100:
            self._wake.set()

    # -- credentials and agents ------------------------------------------------------------------------------------

    async def _all_credentials(self) -> list[Credential]:
        read_at, credentials = self._credentials
        if time.monotonic() - read_at > CACHE_SECONDS:
            credentials = await credentials_db.list_all(self._db)
            self._credentials = (time.monotonic(), credentials)
        return credentials

    @staticmethod
    def _credential_for(credentials: list[Credential], caller: Caller, host: str, port: int) -> Credential | None:
        """The most specific credential of this agent for host:port: an exact host beats a wildcard."""
        matching = [c for c in credentials if host_matches(c.host_pattern, host, port)
                    and c.applies_to(caller.agent_group_id)]
        matching.sort(key=lambda c: (c.host_pattern.startswith("*."), -len(c.host_pattern), c.name))
        return matching[0] if matching else None

    async def _agent(self, agent_group_id: str) -> _Agent | None:
        cached = self._agents.get(agent_group_id)
        if cached is not None and time.monotonic() - cached[0] <= CACHE_SECONDS:
            return cached[1]
        group = await agents_db.get(self._db, agent_group_id)
        if group is None:
            self._agents.pop(agent_group_id, None)
            return None
        try:
            stored = json.loads(group.egress_sites_json or "[]")
        except ValueError:
            stored = []  # unreadable: nothing is on the list, which refuses rather than opens
        sites = tuple(s for s in stored if isinstance(s, str)) if isinstance(stored, list) else ()
        # Anything but "open" (a damaged mode too) means the list applies: it fails closed.
        agent = _Agent(group.name, "open" if group.egress_mode == "open" else "sites", sites)
        self._agents[agent_group_id] = (time.monotonic(), agent)
        return agent

    async def _injection(self, credential: Credential) -> Injection | str:
        """The credential's injection, or why it cannot be used now (the agent gets it as a 403)."""
        try:
            value = await self._secrets.get(credentials_db.secret_name(credential.id))
        except SecretsUnavailable:
            return (f"The {credential.name} credential cannot be used while NanoClaw's secret store is locked. "
                    "Ask the user to unlock it in the app.")
        if not value:
            return (f"The {credential.name} credential has no saved value. Ask the user to enter it again on the "
                    "Credentials page in NanoClaw.")
        return Injection(cast(InjectionKind, credential.kind), credential.field, value)

    # -- approvals -----------------------------------------------------------------------------------------------

    async def _ask(self, caller: Caller, credential: Credential, method: str, host: str, port: int,
                   path: str) -> tuple[str, str | None]:
        """Hold the request until its card is answered or expires: ``approved``/``rejected``/``expired``/``none``."""
        if credential.policy != "ask_once":
            return await self._ask_once_now(caller, credential, _request(method, host, port, path))
        key = (credential.id, caller.session_id)
        task = self._asking.get(key)
        if task is None:
            task = asyncio.create_task(self._ask_once_now(caller, credential, _request(method, host, port, path)),
                                       name=f"egress-approval-{credential.id}")
            self._asking[key] = task
            task.add_done_callback(lambda _: self._asking.pop(key, None))
        return await asyncio.shield(task)

    async def _ask_once_now(self, caller: Caller, credential: Credential, request: str) -> tuple[str, str | None]:
        session = await sessions_db.get(self._db, caller.session_id)
        agent = await self._agent(caller.agent_group_id)
        approvals = self._approvals
        if session is None or agent is None or approvals is None:
            return "none", None
        seconds = self._approval_seconds()
        approval_id = await approvals.request_approval(
            session=session, action=ACTION, ttl_seconds=seconds,
            payload={"credential_id": credential.id, "request": request,
                     "what": f"request to use the {credential.name} credential for {request}"},
            title=f"🔑 {agent.name} wants to use {credential.name}",
            question=(f"{agent.name} wants to send this with the {credential.name} credential:\n{request}\n\n"
                      + ("Allow it for this conversation?" if credential.policy == "ask_once" else "Allow it?")),
        )
        if approval_id is None:
            return "none", None
        deadline = time.monotonic() + seconds
        while True:
            state = await approvals.status(approval_id)
            if state is None:
                return "expired", None
            if state[0] != "pending":
                return state
            if time.monotonic() >= deadline:
                await approvals.expire_now(approval_id)
                state = await approvals.status(approval_id)  # a click may have won the race
                return state if state is not None and state[0] != "pending" else ("expired", None)
            await asyncio.sleep(POLL_SECONDS)

    async def _on_approved(self, ctx: CoreContext, row: PendingApproval) -> str:
        """The held request goes on by itself; the agent is told who allowed it."""
        who = await display_name(ctx.db, row.decided_by) if row.decided_by else "the approver"
        return f"Your {row.payload_dict.get('what') or 'request'} was allowed by {who}."

    # -- activity ------------------------------------------------------------------------------------------------

    async def _write_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_SECONDS):
                    await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        rows, self._queue = self._queue, []
        if not rows:
            return
        try:
            await egress_events.add(self._db, rows)
        except Exception:
            log.exception("writing %d egress activity rows failed; they are kept for the next try", len(rows))
            self._queue[:0] = rows
            return
        if self._events is not None:
            self._events.publish("egress.recorded", count=len(rows))


def _request(method: str, host: str, port: int, path: str) -> str:
    """``GET api.github.com/user`` as a person reads it (the port only when it is not HTTPS's)."""
    return f"{method} {host}{'' if port == 443 else f':{port}'}{path}"
