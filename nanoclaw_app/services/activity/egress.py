"""Internet activity: every credentialed request and every connection the agents' containers made or were refused.

The host, path and method come from the agent's container, which is hostile: they are shown with control and
bidirectional characters written as escapes (so ``evil.com<U+202E>`` cannot pose as another name) and cut to a length
a table can show. The page turns each row into words; the names (agent, approver) are resolved here.
"""

from __future__ import annotations

from dataclasses import dataclass

from nanoclaw_app.db import egress_events as egress_db
from nanoclaw_app.db import users as users_db
from nanoclaw_app.errors import UserError
from nanoclaw_app.services.activity.shared import check_limit, load_directory, local_time
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.text_safety import escape_controls

EGRESS_KINDS = ("request", "connect")
MAX_SHOWN = 300
"""Characters of a host or path shown; the rest is cut with "…" (a path can be as long as the proxy lets it be)."""


@dataclass
class EgressView:
    """One line of internet activity, with display-safe text."""

    id: int
    at: str | None
    agent_group_id: str | None
    agent_name: str
    kind: str
    """``request`` (a credential was added, or a person was asked) or ``connect`` (a connection, allowed or not)."""
    decision: str
    credential_name: str
    method: str
    target: str
    """``api.github.com/repos/x`` for a request (the port shown unless 443), ``pypi.org:443`` for a connection."""
    approved_by: str | None
    """The name of who allowed or denied it, when somebody was asked."""
    status_code: int | None
    reason: str


@dataclass
class AgentChoice:
    """An agent the list can be narrowed to."""

    id: str
    name: str


@dataclass
class EgressList:
    """Internet activity, newest first; ``older`` is the ``before`` that shows the next page, None at the end."""

    timezone: str
    agents: list[AgentChoice]
    events: list[EgressView]
    older: int | None


def _shown(text: str, limit: int = MAX_SHOWN) -> str:
    text = escape_controls(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _target(kind: str, host: str, port: int, path: str) -> str:
    if kind == "connect":
        return f"{_shown(host)}:{port}"
    where = _shown(host) if port == 443 else f"{_shown(host)}:{port}"
    return where + _shown(path)


async def list_egress(
    services: AppServices,
    *,
    agent_group_id: str | None = None,
    kind: str | None = None,
    limit: int = 200,
    before: int | None = None,
) -> EgressList:
    """The newest internet activity, optionally of one agent and one kind (``request`` or ``connect``)."""
    if kind is not None and kind not in EGRESS_KINDS:
        raise UserError(f"unknown kind {kind!r}: use request or connect")
    limit = check_limit(limit)
    db = services.ctx.db
    rows = await egress_db.recent(db, agent_group_id=agent_group_id or None, kind=kind, limit=limit + 1,
                                  before_id=before)
    more, rows = len(rows) > limit, rows[:limit]
    directory = await load_directory(db)
    people: dict[str, str] = {}
    for user_id in {r.approved_by for r in rows if r.approved_by}:
        user = await users_db.get(db, user_id)
        people[user_id] = (user.display_name if user else None) or user_id
    tz = services.settings.tz
    views = [
        EgressView(
            id=r.id, at=local_time(r.at, tz), agent_group_id=r.agent_group_id,
            agent_name=directory.agent(r.agent_group_id), kind=r.kind, decision=r.decision,
            credential_name=_shown(r.credential_name, 100), method=_shown(r.method, 20),
            target=_target(r.kind, r.host, r.port, r.path),
            approved_by=_shown(people[r.approved_by], 100) if r.approved_by else None,
            status_code=r.status_code, reason=_shown(r.reason),
        )
        for r in rows
    ]
    agents = sorted((AgentChoice(id_, name) for id_, name in directory.agents.items()), key=lambda a: a.name.lower())
    return EgressList(timezone=services.settings.timezone, agents=agents, events=views,
                      older=rows[-1].id if more and rows else None)
