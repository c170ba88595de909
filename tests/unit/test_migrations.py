"""Migrations: applied in order, recorded in the ledger, idempotent, and the whole entity model exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from nanoclaw_app.db.database import Database
from nanoclaw_app.db.migrate import discover, migrate
from nanoclaw_app.errors import ConfigError

TABLES = {
    "agent_groups", "messaging_groups", "messaging_group_agents", "users", "user_roles", "agent_group_members",
    "user_dms", "sessions", "pending_questions", "pending_approvals", "pending_sender_approvals",
    "pending_channel_approvals", "agent_destinations", "dropped_messages", "container_configs",
    "channel_accounts", "delivery_attempts", "usage", "denied_senders", "schema_migrations",
}


async def test_fresh_database_gets_every_table(db: Database) -> None:
    rows = await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    assert {r["name"] for r in rows} >= TABLES


async def test_migrate_twice_applies_nothing_the_second_time(db: Database) -> None:
    assert await migrate(db) == []
    ledger = await db.fetchall("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["name"]) for r in ledger] == [(m.version, m.name) for m in discover()]


async def test_migrations_apply_in_number_order_each_in_its_own_transaction(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0002_second.sql").write_text("CREATE TABLE b (x INTEGER REFERENCES a(x));")
    (folder / "0001_first.sql").write_text("CREATE TABLE a (x INTEGER PRIMARY KEY);")
    (folder / "0003_broken.sql").write_text("CREATE TABLE c (x INTEGER);\nINSERT INTO nowhere VALUES (1);")
    async with Database(tmp_path / "t.db") as database:
        with pytest.raises(Exception, match="nowhere"):
            await migrate(database, folder)
        names = [r["name"] for r in await database.fetchall("SELECT name FROM schema_migrations ORDER BY version")]
        assert names == ["first", "second"]
        # the broken migration rolled back whole: its first statement left no table behind
        assert await database.fetchval("SELECT COUNT(*) FROM sqlite_master WHERE name = 'c'") == 0
        (folder / "0003_broken.sql").write_text("CREATE TABLE c (x INTEGER);")
        assert await migrate(database, folder) == ["0003_broken"]


def test_badly_named_migration_is_refused(tmp_path: Path) -> None:
    (tmp_path / "init.sql").write_text("SELECT 1;")
    with pytest.raises(ConfigError, match="NNNN_name"):
        discover(tmp_path)
