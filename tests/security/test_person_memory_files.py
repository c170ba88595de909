"""The People page's memory editor against an agent that plants links, pipes and huge files among its memory files.

The agent folder is writable by the agent's containers; these play the container with plain file operations (as
``test_mounted_folders.py`` does) and attack through the real app's HTTP API.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from agent_runner.people_memory import person_file
from nanoclaw_app.db import agents, users
from nanoclaw_app.host import Host
from nanoclaw_app.services.person_memory import MAX_BYTES
from tests.integration.seed import Seeded, seed
from tests.web.conftest import base_url, client, keyring_backend, web_host, web_settings

__all__ = ["base_url", "client", "keyring_backend", "web_host", "web_settings"]

FRIEND = "test:friend"
SECRET = "the user's private file\n"


@pytest.fixture
async def seeded(web_host: Host) -> Seeded:
    done = await seed(web_host.db)
    await users.upsert(web_host.db, FRIEND, "test", "Fran")
    return done


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file of the user's outside every mount."""
    path = tmp_path / "victim.txt"
    path.write_text(SECRET, encoding="utf-8")
    return path


async def people_folder(host: Host, agent_id: str) -> Path:
    agent = await agents.get(host.db, agent_id)
    assert agent is not None
    folder = host.settings.paths.agents / agent.folder / "people"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def read(client: httpx.AsyncClient, agent_id: str) -> httpx.Response:
    return await client.get("/api/people/memory", params={"agent": agent_id, "user": FRIEND})


async def save(client: httpx.AsyncClient, agent_id: str, text: str) -> httpx.Response:
    return await client.post("/api/people/memory", json={"agent_group_id": agent_id, "user_id": FRIEND, "text": text})


async def afresh(client: httpx.AsyncClient, agent_id: str) -> httpx.Response:
    return await client.post("/api/people/memory/start-afresh", json={"agent_group_id": agent_id, "user_id": FRIEND})


async def test_a_person_file_linked_to_a_host_file_is_refused_in_words_and_never_followed(
    client: httpx.AsyncClient, seeded: Seeded, web_host: Host, victim: Path
) -> None:
    planted = (await people_folder(web_host, seeded.agent_id)).parent / person_file(FRIEND)
    planted.symlink_to(victim)

    shown = await read(client, seeded.agent_id)
    assert shown.status_code == 400
    assert "symbolic link" in shown.json()["error"]
    assert "Start this memory afresh" in shown.json()["error"]
    assert SECRET.strip() not in shown.text
    assert (await save(client, seeded.agent_id, "pwned")).status_code == 400
    assert victim.read_text(encoding="utf-8") == SECRET

    fixed = await afresh(client, seeded.agent_id)
    assert fixed.status_code == 200
    assert fixed.json()["text"] == ""
    assert not planted.is_symlink()
    assert victim.read_text(encoding="utf-8") == SECRET
    assert (await save(client, seeded.agent_id, "Fran is allergic to nuts.")).status_code == 200
    assert planted.read_text(encoding="utf-8") == "Fran is allergic to nuts."
    assert not planted.is_symlink()


async def test_a_pipe_or_a_huge_file_is_refused_without_hanging_and_removed_on_request(
    client: httpx.AsyncClient, seeded: Seeded, web_host: Host
) -> None:
    planted = (await people_folder(web_host, seeded.agent_id)).parent / person_file(FRIEND)
    os.mkfifo(planted)
    shown = await read(client, seeded.agent_id)
    assert shown.status_code == 400
    assert "because it is a pipe" in shown.json()["error"]
    assert (await afresh(client, seeded.agent_id)).status_code == 200
    assert not planted.exists()

    planted.write_bytes(b"x" * (MAX_BYTES + 1))
    huge = await read(client, seeded.agent_id)
    assert huge.status_code == 400
    assert "too large to show here" in huge.json()["error"]
    assert (await afresh(client, seeded.agent_id)).status_code == 200
    assert (await read(client, seeded.agent_id)).json()["text"] == ""


async def test_a_people_folder_linked_elsewhere_is_refused_and_only_the_link_is_removed(
    client: httpx.AsyncClient, seeded: Seeded, web_host: Host, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / Path(person_file(FRIEND)).name).write_text(SECRET, encoding="utf-8")
    folder = await people_folder(web_host, seeded.agent_id)
    folder.rmdir()
    folder.symlink_to(elsewhere, target_is_directory=True)

    shown = await read(client, seeded.agent_id)
    assert shown.status_code == 400
    assert SECRET.strip() not in shown.text
    assert (await save(client, seeded.agent_id, "pwned")).status_code == 400
    listed = (await client.get("/api/people/memories", params={"agent": seeded.agent_id})).json()
    assert all(p["bytes"] is None for p in listed["people"])  # the linked folder is not listed through

    assert (await afresh(client, seeded.agent_id)).status_code == 200
    assert not folder.is_symlink()
    assert (elsewhere / Path(person_file(FRIEND)).name).read_text(encoding="utf-8") == SECRET
    assert (await save(client, seeded.agent_id, "Fran likes jazz.")).status_code == 200
    assert (folder.parent / person_file(FRIEND)).read_text(encoding="utf-8") == "Fran likes jazz."
    assert (elsewhere / Path(person_file(FRIEND)).name).read_text(encoding="utf-8") == SECRET
