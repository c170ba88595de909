"""Activity's timeline reads a session's databases, which the agent's container can rewrite at any moment: a planted
link is not followed, a garbage file is not an error page, and what the agent wrote is shown as text, never markup."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import expect

from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.host import Host
from nanoclaw_app.timeutil import iso, utcnow
from tests.integration.seed import seed

HOSTILE = '<img src=x onerror="document.title=\'pwned\'">'


async def _session(host: Host) -> tuple[str, Path]:
    ids = await seed(host.db)
    session, _ = await sessions_db.find_or_create(host.db, ids.agent_id, "shared", ids.dm_id, None)
    return session.id, await host.store.create(ids.agent_id, session.id)


def _elsewhere(tmp_path: Path) -> Path:
    """Another database of the user's, shaped like an outbound.db, holding something the agent must not reach."""
    other = tmp_path / "elsewhere.db"
    conn = sqlite3.connect(other)
    try:
        conn.execute("CREATE TABLE messages_out (id TEXT, seq INTEGER, timestamp TEXT, kind TEXT, platform_id TEXT,"
                     " channel_type TEXT, content TEXT)")
        conn.execute("INSERT INTO messages_out VALUES ('x', 1, ?, 'chat', 'owner', 'test', ?)",
                     (iso(utcnow()), '{"text": "SECRET FROM ELSEWHERE"}'))
        conn.commit()
    finally:
        conn.close()
    return other


async def test_an_outbound_db_swapped_for_a_link_is_not_followed(web_host: Host, client: httpx.AsyncClient,
                                                                tmp_path: Path) -> None:
    session_id, folder = await _session(web_host)
    (folder / "outbound.db").unlink()
    (folder / "outbound.db").symlink_to(_elsewhere(tmp_path))
    answer = await client.get(f"/api/activity/logs/{session_id}")
    assert answer.status_code == 200
    assert "SECRET FROM ELSEWHERE" not in answer.text


async def test_a_garbage_outbound_db_leaves_the_timeline_empty_not_broken(web_host: Host,
                                                                          client: httpx.AsyncClient) -> None:
    session_id, folder = await _session(web_host)
    (folder / "outbound.db").write_bytes(b"not a database at all" * 500)
    answer = await client.get(f"/api/activity/logs/{session_id}")
    assert answer.status_code == 200
    assert answer.json()["timeline"] == []


async def test_what_the_agent_wrote_is_shown_as_text(web_host: Host, page: Any, base_url: str) -> None:
    session_id, folder = await _session(web_host)
    conn = sqlite3.connect(folder / "outbound.db")
    try:
        conn.execute("INSERT INTO messages_out (id, seq, timestamp, kind, platform_id, channel_type, content)"
                     " VALUES ('out-1', 1, ?, 'chat', 'owner', 'test', json_object('text', ?))",
                     (iso(utcnow()), HOSTILE))
        conn.commit()
    finally:
        conn.close()
    await page.goto(f"{base_url}/activity#logs")
    await page.get_by_role("tab", name="What agents did").click()
    timeline = page.locator("#timeline")
    await expect(timeline).to_contain_text("onerror")  # the text itself ...
    assert await timeline.locator("img").count() == 0  # ... never an element
    assert await page.title() != "pwned"
    assert session_id
