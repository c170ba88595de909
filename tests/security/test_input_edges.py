"""Input edges: a hostile body, address, name or file name gets a clear 400 or is cleaned, never a 500 or a raw
control character in the log or on a page. One test per class, against the real app and its services."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_runner.protocol import OutboundRow, SystemAction, TextOut
from nanoclaw_app.core import inbox, outbound, scheduling
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import InboundMessage, IncomingAttachment
from nanoclaw_app.core.router import Router
from nanoclaw_app.core.scheduling import NewTask
from nanoclaw_app.core.system_actions import SystemActions
from nanoclaw_app.db import agents, messaging, users
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.messaging import WiringSpec
from nanoclaw_app.host import Host
from nanoclaw_app.logs import setup_logging
from nanoclaw_app.paths import Paths
from nanoclaw_app.services import chat
from nanoclaw_app.timeutil import iso, now_iso, utcnow
from tests.fakes.container import write_out
from tests.unit.routing.helpers import Hooks
from tests.web import conftest as web

# The real app, signed in (``client``) or not (``anon``): the web tests' fixtures.
web_settings, keyring_backend, web_host = web.web_settings, web.keyring_backend, web.web_host
base_url, client, anon = web.base_url, web.client, web.anon

HOSTILE = "Evil\x00\x1b[2J\r\nFAKE ERROR\u202eexe.txt"
"""A name with a NUL, a terminal escape, a forged log line and a right-to-left override."""
CLEAN = "Evil[2J FAKE ERRORexe.txt"
RLO_FILE = "invoice\u202efdp.exe"
"""Shows as ``invoiceexe.pdf``: a program disguised as a document."""


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _no_raw_controls(text: str) -> None:
    assert not any((ord(c) < 0x20 and c != "\n") or c in "\x7f\u202e" for c in text), repr(text)


# --------------------------------------------------------------------------------------------- request bodies


async def test_deeply_nested_or_huge_json_is_a_clear_400_on_every_json_endpoint(
    web_host: Host, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    created = await client.post("/api/agents", json={"name": "Nano"})
    agent_id = created.json()["id"]
    endpoints = [("POST", "/api/agents"), ("PATCH", f"/api/agents/{agent_id}"), ("POST", "/api/people/rename"),
                 ("PUT", "/api/settings"), ("POST", "/api/chat/messages")]
    with caplog.at_level(logging.ERROR):
        for method, path in endpoints:
            for depth in (100, 100_000):
                body = '{"name": ' + _nested(depth) + "}"
                response = await client.request(method, path, content=body,
                                                headers={"content-type": "application/json"})
                assert response.status_code == 400, (path, depth, response.text)
                assert "nested too deeply" in response.json()["error"]
            huge = json.dumps({"name": "x" * (2 * 1024 * 1024)})
            response = await client.request(method, path, content=huge, headers={"content-type": "application/json"})
            assert response.status_code == 413, (path, response.text)
            assert "too large" in response.json()["error"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert (await client.patch(f"/api/agents/{agent_id}", json={"name": "Nano two"})).json()["name"] == "Nano two"


# --------------------------------------------------------------------------------------------- static files


async def test_odd_static_file_addresses_are_refused_without_a_session_and_without_a_500(
    anon: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        nul = await anon.get("/static/app.js%00.css")
        line_break = await anon.get("/static/app.js%0d%0aX-Evil:%201")
        long_name = await anon.get("/static/" + "a" * 5000 + ".js")
        escape = await anon.get("/static/..%2f..%2fpyproject.toml")
    assert nul.status_code == 400
    assert "not allowed" in nul.json()["error"]
    assert line_break.status_code == 400
    assert "x-evil" not in line_break.headers
    assert long_name.status_code == 404
    assert escape.status_code == 404
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert (await anon.get("/static/app.js")).status_code == 200


# --------------------------------------------------------------------------------------------- names


async def test_control_and_bidi_characters_are_removed_from_every_given_name(
    web_host: Host, client: httpx.AsyncClient
) -> None:
    created = await client.post("/api/agents", json={"name": HOSTILE})
    assert created.status_code == 201, created.text
    agent_id = created.json()["id"]
    assert created.json()["name"] == CLEAN
    renamed = await client.patch(f"/api/agents/{agent_id}",
                                 json={"name": HOSTILE + " 2", "assistant_name": "Ada\u202e\x07"})
    assert (renamed.json()["name"], renamed.json()["assistant_name"]) == (CLEAN + " 2", "Ada")
    only_controls = await client.post("/api/agents", json={"name": "\x00\u202e\x1b"})
    assert only_controls.status_code == 400
    assert "must not be empty" in only_controls.json()["error"]

    await users.upsert(web_host.db, "test:bob", "test", "Bob")
    person = await client.post("/api/people/rename", json={"user_id": "test:bob", "display_name": HOSTILE})
    assert person.status_code == 200, person.text
    assert person.json()["display_name"] == CLEAN

    # An agent asking for another agent: the owner's approval card names it cleanly.
    session, _ = await sessions_db.find_or_create(web_host.db, agent_id, "agent-shared", None, None)
    await web_host.store.create(agent_id, session.id)
    row = OutboundRow(id="out-1", seq=1, kind="system", timestamp=now_iso(),
                      content=SystemAction(action="create_agent", payload={"name": HOSTILE + " child"}).to_json())
    asked: list[dict[str, Any]] = []

    async def request_approval(**kwargs: Any) -> str | None:
        asked.append(kwargs)
        return "appr-1"

    await SystemActions(web_host.ctx, request_approval=request_approval).apply(session, row)
    [card] = asked
    assert card["payload"]["name"] == CLEAN + " child"
    _no_raw_controls(card["question"])

    # A task the agent scheduled, as the tasks page lists it.
    task = NewTask(id="task-1", prompt=HOSTILE, process_after=iso(utcnow() + timedelta(days=1)))
    await web_host.store.write(web_host.store.dir(agent_id, session.id), partial(scheduling.schedule, task=task))
    [listed] = (await client.get("/api/tasks")).json()["tasks"]
    assert listed["prompt"] == CLEAN


async def test_a_chat_platform_gives_clean_sender_and_chat_names(ctx: CoreContext) -> None:
    message = InboundMessage(channel_type="test", platform_id="grp", message_id="m1", sender_id="carol",
                             text="hi @Nano", sender_name="Carol\u202e\x00", chat_name="Family\r\nchat\u2066",
                             is_group=True, is_mention=True)
    await Router(ctx, Hooks()).route(message)
    carol = await users.get(ctx.db, "test:carol")
    assert carol is not None
    assert carol.display_name == "Carol"
    [family] = await messaging.list_all(ctx.db)
    assert family.name == "Family chat"


async def test_log_lines_show_control_characters_as_escapes(paths: Paths) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        log_file = setup_logging(paths.logs, "INFO", console=False)
        logging.getLogger("nanoclaw.test").warning("agent %s created", HOSTILE)
        try:
            raise ValueError("bad\x1b[31m value")
        except ValueError:
            logging.getLogger("nanoclaw.test").exception("it failed")
        for handler in root.handlers:
            handler.flush()
        text = log_file.read_text(encoding="utf-8")
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
                handler.close()
    _no_raw_controls(text)
    lines = text.splitlines()
    [created] = [line for line in lines if "agent Evil" in line]
    assert created.endswith("agent Evil\\x00\\x1b[2J\\r\\nFAKE ERROR\\u202eexe.txt created")
    assert not any(line.startswith("FAKE ERROR") for line in lines)
    assert "Traceback (most recent call last):" in lines  # a traceback keeps its lines
    assert any("bad\\x1b[31m value" in line for line in lines)


# --------------------------------------------------------------------------------------------- attachment names


async def test_attachment_names_lose_bidi_overrides_and_controls_wherever_they_enter(
    web_host: Host, client: httpx.AsyncClient
) -> None:
    agent = await agents.create(web_host.db, "Nano")
    await chat.ensure_owner_chat(web_host.services, agent.id)

    # The in-app chat: the owner uploads a file.
    sent = await client.post("/api/chat/messages", data={"text": "look"},
                             files=[("files", (RLO_FILE, b"MZ", "application/octet-stream"))])
    assert sent.status_code == 201, sent.text
    assert [f["name"] for f in sent.json()["files"]] == ["invoicefdp.exe"]

    # A chat platform: an attachment of a routed message.
    ctx: CoreContext = web_host.ctx
    group = await messaging.create(ctx.db, "test", "grp-2")
    await messaging.wire(ctx.db, group.id, agent.id, WiringSpec("pattern", "."))
    await users.upsert(ctx.db, "test:dave", "test", "Dave")
    await users.add_member(ctx.db, "test:dave", agent.id)
    session, _ = await sessions_db.find_or_create(ctx.db, agent.id, "shared", group.id, None)
    folder = await ctx.store.create(agent.id, session.id)
    message = InboundMessage(channel_type="test", platform_id="grp-2", message_id="p-1", sender_id="dave",
                             text="see attached", attachments=(IncomingAttachment(RLO_FILE, b"MZ"),
                                                               IncomingAttachment("note\x00\n.txt", b"x")))
    seq = await inbox.write_message(ctx, session, message, trigger=True)
    content = await ctx.store.read(folder, lambda c: c.execute(
        "SELECT content FROM messages_in WHERE seq = ?", (seq,)).fetchone()[0], with_outbound=False)
    attachments = json.loads(content)["attachments"]
    assert [(a["name"], a.get("local_path")) for a in attachments] == [
        ("invoicefdp.exe", "inbox/p-1/invoicefdp.exe"), ("note .txt", "inbox/p-1/note .txt")]
    assert sorted(p.name for p in (folder / "inbox" / "p-1").iterdir()) == ["invoicefdp.exe", "note .txt"]

    # The agent: a file it sends to a chat.
    (folder / "outbox" / "out-1").mkdir(parents=True)
    (folder / "outbox" / "out-1" / RLO_FILE).write_bytes(b"MZ")
    write_out(folder, TextOut(text="here", files=[RLO_FILE]).to_json(), row_id="out-1")
    [file] = await ctx.store.run_io(lambda: outbound.read_files(ctx, folder, "out-1", [RLO_FILE]))
    assert (file.name, file.data) == ("invoicefdp.exe", b"MZ")


def test_no_inbox_file_is_created_with_a_control_character(tmp_path: Path) -> None:
    from nanoclaw_app.errors import UnsafePath
    from nanoclaw_app.sessions.files import write_inbox_file

    with pytest.raises(UnsafePath):
        write_inbox_file(tmp_path, "m1", RLO_FILE, b"MZ", 1024)
    assert not (tmp_path / "inbox" / "m1" / RLO_FILE).exists()
