"""Queries for ``egress_events``: what the agents' containers did on the internet, for the activity page.

The proxy records a line per connection and per credentialed request; the lead's batching writer hands them to
:func:`add` in groups, so a busy agent costs one transaction per batch, not one per connection. Rows are kept for
``KEEP_DAYS`` (the sweep calls :func:`purge_old`), which bounds the table whatever an agent does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import from_row
from nanoclaw_app.timeutil import iso, utcnow

KEEP_DAYS = 30
"""How long a line of internet activity is kept."""

COLUMNS: tuple[str, ...] = (
    "at", "agent_group_id", "session_id", "kind", "credential_id", "credential_name", "method", "host", "port",
    "path", "decision", "approved_by", "status_code", "reason",
)
"""Every column but ``id``: the keys :func:`add` expects in each row."""

_DEFAULTS: dict[str, object] = {"credential_name": "", "method": "", "path": "", "reason": ""}
"""Columns with a default in the schema; a row may leave them (and the nullable ones) out."""

_INSERT = f"INSERT INTO egress_events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"


@dataclass(frozen=True, slots=True)
class EgressEvent:
    """One ``egress_events`` row: a credentialed request (``request``) or a connection (``connect``)."""

    id: int
    at: str
    agent_group_id: str | None
    session_id: str | None
    kind: str
    credential_id: str | None
    credential_name: str
    method: str
    host: str
    port: int
    path: str
    decision: str
    approved_by: str | None
    status_code: int | None
    reason: str


async def add(db: Database, rows: Sequence[Mapping[str, object]]) -> None:
    """Insert a batch in one transaction (one ``executemany``).

    Keys are :data:`COLUMNS` (``at``, ``kind``, ``host``, ``port`` and ``decision`` required); an unknown key is
    refused, so a typo cannot drop a field silently.
    """
    if not rows:
        return
    params = []
    for row in rows:
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise ValueError(f"egress_events has no column(s) {sorted(unknown)}")
        params.append(tuple(row.get(col, _DEFAULTS.get(col)) for col in COLUMNS))
    await db.executemany(_INSERT, params)


async def recent(
    db: Database,
    *,
    agent_group_id: str | None = None,
    kind: str | None = None,
    limit: int = 200,
    before_id: int | None = None,
) -> list[EgressEvent]:
    """Newest first, optionally of one agent and one kind; ``before_id`` pages on to older rows."""
    rows = await db.fetchall(
        "SELECT * FROM egress_events WHERE (?1 IS NULL OR agent_group_id = ?1) AND (?2 IS NULL OR kind = ?2)"
        " AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?4",
        (agent_group_id, kind, before_id, max(0, int(limit))),
    )
    return [from_row(EgressEvent, r) for r in rows]


async def purge_older_than(db: Database, when: str) -> int:
    """Delete rows recorded before ``when`` (a stored UTC time); returns how many."""
    return await db.execute("DELETE FROM egress_events WHERE at < ?", (when,))


async def purge_old(db: Database, *, now: datetime | None = None) -> int:
    """Delete rows older than :data:`KEEP_DAYS`; the sweep calls this every pass (the ``at`` index keeps it cheap)."""
    return await purge_older_than(db, iso((now or utcnow()) - timedelta(days=KEEP_DAYS)))
