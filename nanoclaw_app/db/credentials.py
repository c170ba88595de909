"""Queries for ``credentials`` and ``credential_grants``: what each credential applies to, never its value.

The value lives only in the secret store, under :func:`secret_name`; a row here says where and how it is added, which
agents may use it and whether a person is asked first.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import from_row, maybe
from nanoclaw_app.ids import base36
from nanoclaw_app.timeutil import now_iso

Agents = Literal["all"] | tuple[str, ...]


def secret_name(credential_id: str) -> str:
    """The secret store's name for a credential's value."""
    return f"credential:{credential_id}"


def new_credential_id() -> str:
    """``cred-<ms base36>-<random>``, sortable by creation like the app's other ids."""
    return f"cred-{base36(time.time_ns() // 1_000_000)}-{base36(secrets.randbits(48)).rjust(10, '0')}"


@dataclass(frozen=True, slots=True)
class Credential:
    """One ``credentials`` row."""

    id: str
    name: str
    host_pattern: str
    kind: str
    field: str
    agents_json: str
    policy: str
    test_url: str
    created_at: str
    updated_at: str

    @property
    def agents(self) -> Agents:
        """``"all"``, or the agent group ids that may use it; a damaged value means no agent (never all)."""
        try:
            value = json.loads(self.agents_json)
        except ValueError:
            return ()
        if value == "all":
            return "all"
        if isinstance(value, list):
            return tuple(item for item in value if isinstance(item, str))
        return ()

    def applies_to(self, agent_group_id: str) -> bool:
        """Whether this agent may use it."""
        agents = self.agents
        return agents == "all" or agent_group_id in agents


def _agents_json(agents: Agents | Sequence[str]) -> str:
    return json.dumps("all" if agents == "all" else list(agents))


async def list_all(db: Database) -> list[Credential]:
    """Every credential, by name."""
    rows = await db.fetchall("SELECT * FROM credentials ORDER BY name COLLATE NOCASE, id")
    return [from_row(Credential, row) for row in rows]


async def get(db: Database, credential_id: str) -> Credential | None:
    """One credential by id."""
    return maybe(Credential, await db.fetchone("SELECT * FROM credentials WHERE id = ?", (credential_id,)))


async def get_by_name(db: Database, name: str) -> Credential | None:
    """One credential by name, whatever its case ("github" finds "GitHub")."""
    row = await db.fetchone("SELECT * FROM credentials WHERE name = ? COLLATE NOCASE ORDER BY id LIMIT 1", (name,))
    return maybe(Credential, row)


async def create(
    db: Database, *, name: str, host_pattern: str, kind: str, field: str = "",
    agents: Agents | Sequence[str] = "all", policy: str = "allow", test_url: str = "",
) -> Credential:
    """Add a credential (already checked by the service); raises ``sqlite3.IntegrityError`` for a taken name."""
    now = now_iso()
    credential = Credential(id=new_credential_id(), name=name, host_pattern=host_pattern, kind=kind, field=field,
                            agents_json=_agents_json(agents), policy=policy, test_url=test_url, created_at=now,
                            updated_at=now)
    await db.execute(
        "INSERT INTO credentials (id, name, host_pattern, kind, field, agents_json, policy, test_url, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (credential.id, credential.name, credential.host_pattern, credential.kind, credential.field,
         credential.agents_json, credential.policy, credential.test_url, credential.created_at,
         credential.updated_at),
    )
    return credential


async def update(
    db: Database, credential_id: str, *, name: str, host_pattern: str, kind: str, field: str,
    agents: Agents | Sequence[str], policy: str, test_url: str,
) -> bool:
    """Replace everything but the value; False when it does not exist.

    "Ask once" grants end: what a person allowed was the credential as it was.
    """
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "UPDATE credentials SET name = ?, host_pattern = ?, kind = ?, field = ?, agents_json = ?, policy = ?,"
            " test_url = ?, updated_at = ? WHERE id = ?",
            (name, host_pattern, kind, field, _agents_json(agents), policy, test_url, now_iso(), credential_id),
        )
        if cursor.rowcount == 0:
            return False
        await conn.execute("DELETE FROM credential_grants WHERE credential_id = ?", (credential_id,))
    return True


async def delete(db: Database, credential_id: str) -> bool:
    """Remove a credential and its grants; False when it did not exist."""
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM credential_grants WHERE credential_id = ?", (credential_id,))
        cursor = await conn.execute("DELETE FROM credentials WHERE id = ?", (credential_id,))
        return cursor.rowcount > 0


async def has_grant(db: Database, credential_id: str, session_id: str) -> bool:
    """Whether someone allowed this credential for the rest of this conversation ("ask once")."""
    row = await db.fetchone(
        "SELECT 1 FROM credential_grants WHERE credential_id = ? AND session_id = ?", (credential_id, session_id)
    )
    return row is not None


async def add_grant(db: Database, credential_id: str, session_id: str, approved_by: str | None) -> None:
    """Allow a credential for the rest of one conversation (idempotent: the first approver is kept)."""
    await db.execute(
        "INSERT INTO credential_grants (credential_id, session_id, approved_by, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (credential_id, session_id) DO NOTHING",
        (credential_id, session_id, approved_by, now_iso()),
    )
