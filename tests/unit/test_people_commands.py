"""``nanoclaw people ...``: roles, memberships and names from a terminal; the last owner stays."""

from __future__ import annotations

import asyncio
import json

import pytest

from nanoclaw_app.cli import main
from nanoclaw_app.db import users
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.migrate import migrate
from nanoclaw_app.paths import Paths
from tests.integration.seed import Seeded, seed


def _seeded() -> Seeded:
    async def go() -> Seeded:
        paths = Paths.from_env()
        paths.ensure()
        async with Database(paths.central_db) as db:
            await migrate(db)
            done = await seed(db)
            await users.upsert(db, "test:friend", "test", "Fran")
            return done
    return asyncio.run(go())


def test_list_shows_everyone_with_roles(capsys: pytest.CaptureFixture[str]) -> None:
    _seeded()
    assert main(["people", "list"]) == 0
    out = capsys.readouterr().out
    assert "test:owner" in out
    assert "owner" in out
    assert "Fran" in out
    assert main(["people", "list", "--json"]) == 0
    people = json.loads(capsys.readouterr().out)
    assert [p["id"] for p in people] == ["test:owner", "test:friend"]


def test_grant_and_revoke_an_admin_of_one_agent(capsys: pytest.CaptureFixture[str]) -> None:
    _seeded()
    assert main(["people", "grant", "Fran", "admin", "--agent", "Nano", "--json"]) == 0
    [fran] = json.loads(capsys.readouterr().out)
    assert [(r["role"], r["agent_name"], r["granted_by"]) for r in fran["roles"]] == [("admin", "Nano", "cli")]
    assert main(["people", "revoke", "test:friend", "admin", "--agent", "Nano"]) == 0
    capsys.readouterr()
    assert main(["people", "revoke", "test:friend", "admin", "--agent", "Nano"]) == 1
    assert "is not admin" in capsys.readouterr().err


def test_the_last_owner_cannot_be_revoked(capsys: pytest.CaptureFixture[str]) -> None:
    _seeded()
    assert main(["people", "revoke", "test:owner", "owner"]) == 1
    assert "only owner" in capsys.readouterr().err
    assert main(["people", "grant", "Fran", "owner"]) == 0
    assert main(["people", "revoke", "test:owner", "owner"]) == 0


def test_members_are_added_by_id_before_they_write_and_removed(capsys: pytest.CaptureFixture[str]) -> None:
    _seeded()
    assert main(["people", "add-member", "telegram:555", "Nano", "--json"]) == 0
    [person] = json.loads(capsys.readouterr().out)
    assert (person["id"], [m["agent_name"] for m in person["memberships"]]) == ("telegram:555", ["Nano"])
    assert main(["people", "remove-member", "telegram:555", "Nano"]) == 0
    assert main(["people", "remove-member", "telegram:555", "Nano"]) == 1
    assert "not a member" in capsys.readouterr().err


def test_rename(capsys: pytest.CaptureFixture[str]) -> None:
    _seeded()
    assert main(["people", "rename", "test:friend", "Aunt Fran", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["display_name"] == "Aunt Fran"
    assert main(["people", "rename", "Aunt Fran", " "]) == 1
    assert "empty" in capsys.readouterr().err
