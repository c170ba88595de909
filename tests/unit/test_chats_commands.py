"""``nanoclaw chats ...``: the same service layer as the chats page, from a terminal."""

from __future__ import annotations

import asyncio
import json

import pytest

from nanoclaw_app.cli import main
from nanoclaw_app.db import agents, messaging
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.migrate import migrate
from nanoclaw_app.db.rows import MessagingGroup, Wiring
from nanoclaw_app.paths import Paths
from tests.integration.seed import Seeded, seed


def _seeded() -> Seeded:
    async def go() -> Seeded:
        paths = Paths.from_env()
        paths.ensure()
        async with Database(paths.central_db) as db:
            await migrate(db)
            done = await seed(db)
            await agents.create(db, "Helper")
            return done
    return asyncio.run(go())


def _chat(chat_id: str) -> MessagingGroup:
    async def go() -> MessagingGroup | None:
        async with Database(Paths.from_env().central_db) as db:
            return await messaging.get(db, chat_id)
    found = asyncio.run(go())
    assert found is not None
    return found


def _wirings(chat_id: str) -> list[Wiring]:
    async def go() -> list[Wiring]:
        async with Database(Paths.from_env().central_db) as db:
            return await messaging.wirings_for(db, chat_id)
    return asyncio.run(go())


def test_list_shows_chats_with_their_agents(capsys: pytest.CaptureFixture[str]) -> None:
    seeded = _seeded()
    assert main(["chats", "list"]) == 0
    out = capsys.readouterr().out
    assert "Family" in out
    assert "Owner DM" in out
    assert "pattern ." in out

    assert main(["chats", "list", "--json"]) == 0
    chats = json.loads(capsys.readouterr().out)
    assert {c["id"] for c in chats} == {seeded.dm_id, seeded.group_id}


def test_policy_is_set_by_chat_name(capsys: pytest.CaptureFixture[str]) -> None:
    seeded = _seeded()
    assert main(["chats", "policy", "family", "request_approval"]) == 0
    assert _chat(seeded.group_id).unknown_sender_policy == "request_approval"
    with pytest.raises(SystemExit):
        main(["chats", "policy", "family", "open"])


def test_wire_set_and_unwire_by_names(capsys: pytest.CaptureFixture[str]) -> None:
    seeded = _seeded()
    wired = main(["chats", "wire", "test:group-1", "Helper", "--engage", "pattern", "--pattern", "helper", "--json"])
    assert wired == 0
    chat = json.loads(capsys.readouterr().out)[0]
    assert [(w["agent_name"], w["engage_mode"], w["engage_pattern"]) for w in chat["wirings"]] == [
        ("Nano", "mention", None), ("Helper", "pattern", "helper")]

    assert main(["chats", "set", "Family", "Helper", "--priority", "3", "--session", "agent-shared"]) == 0
    helper = next(w for w in _wirings(seeded.group_id) if w.priority == 3)
    assert helper.session_mode == "agent-shared"

    assert main(["chats", "unwire", "Family", "Helper"]) == 0
    assert len(_wirings(seeded.group_id)) == 1


def test_a_broken_pattern_or_unknown_agent_says_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    seeded = _seeded()
    assert main(["chats", "set", "Family", "Nano", "--engage", "pattern", "--pattern", "[a-"]) == 1
    assert "not a valid regular expression" in capsys.readouterr().err
    assert _wirings(seeded.group_id)[0].engage_mode == "mention"

    assert main(["chats", "wire", "Family", "Nobody"]) == 1
    assert "nanoclaw agents list" in capsys.readouterr().err
    assert main(["chats", "wire", "Family", "Nano"]) == 1
    assert "already answers" in capsys.readouterr().err
