"""Queries for ``secret_names``: which secrets the app has stored, with a label for people.

Keyring backends cannot list their entries portably, and the UI must never read values to show a list, so the names
are kept here. Values live only in the secret store.
"""

from __future__ import annotations

from dataclasses import dataclass

from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import from_row
from nanoclaw_app.timeutil import now_iso


@dataclass(frozen=True, slots=True)
class SecretName:
    """One stored secret's name and label (never its value)."""

    name: str
    label: str
    updated_at: str


async def list_all(db: Database) -> list[SecretName]:
    """Every recorded secret, by name."""
    rows = await db.fetchall("SELECT name, label, updated_at FROM secret_names ORDER BY name")
    return [from_row(SecretName, row) for row in rows]


async def get(db: Database, name: str) -> SecretName | None:
    """One recorded secret, or None."""
    row = await db.fetchone("SELECT name, label, updated_at FROM secret_names WHERE name = ?", (name,))
    return None if row is None else from_row(SecretName, row)


async def record(db: Database, name: str, label: str = "") -> None:
    """Record that ``name`` was stored now; an empty ``label`` keeps the one already recorded."""
    await db.execute(
        "INSERT INTO secret_names (name, label, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
        " label = CASE WHEN excluded.label = '' THEN secret_names.label ELSE excluded.label END,"
        " updated_at = excluded.updated_at",
        (name, label, now_iso()),
    )


async def forget(db: Database, name: str) -> bool:
    """Drop a name; False when it was not recorded."""
    return await db.execute("DELETE FROM secret_names WHERE name = ?", (name,)) > 0
