"""Numbered SQL migrations (``NNNN_name.sql``) applied in order, each in its own transaction, recorded in a ledger."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from nanoclaw_app.db.database import Database
from nanoclaw_app.errors import ConfigError, IntegrityError
from nanoclaw_app.paths import resource
from nanoclaw_app.timeutil import now_iso

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    applied_at TEXT NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    path: Path


def migrations_dir() -> Path:
    """Folder of the shipped migration files (from source or the frozen bundle)."""
    return resource("nanoclaw_app", "db", "migrations")


def discover(folder: Path | None = None) -> list[Migration]:
    """List migration files in version order; refuse gaps' duplicates and odd names loudly."""
    folder = folder or migrations_dir()
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ConfigError(f"migration file {path.name!r} is not named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise IntegrityError(f"duplicate migration versions in {folder}")
    return found


async def applied_versions(db: Database) -> dict[int, str]:
    """Versions already recorded in the ledger."""
    await db.execute(LEDGER)
    rows = await db.fetchall("SELECT version, name FROM schema_migrations ORDER BY version")
    return {row["version"]: row["name"] for row in rows}


async def migrate(db: Database, folder: Path | None = None) -> list[str]:
    """Apply every pending migration; returns the names applied (empty when up to date)."""
    done = await applied_versions(db)
    applied: list[str] = []
    for migration in discover(folder):
        if migration.version in done:
            if done[migration.version] != migration.name:
                raise IntegrityError(
                    f"migration {migration.version} is recorded as {done[migration.version]!r} "
                    f"but the file is {migration.name!r}"
                )
            continue
        sql = migration.path.read_text(encoding="utf-8")
        async with db.transaction() as conn:
            # executescript would COMMIT first; run statement by statement to stay inside our transaction.
            for statement in _split(sql):
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, now_iso()),
            )
        log.info("applied migration %04d_%s", migration.version, migration.name)
        applied.append(f"{migration.version:04d}_{migration.name}")
    return applied


def _split(script: str) -> list[str]:
    """Split a SQL script into complete statements using SQLite's own completeness check."""
    import sqlite3

    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        if not buffer and line.strip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(part.strip().startswith("--") for part in buffer.strip().splitlines()):
        raise ConfigError("migration ends with an incomplete SQL statement")
    return statements
