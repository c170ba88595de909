"""The in-app chat against the real app: the owner types, the agent (the in-process runtime, which answers
"echo: <text>") replies live; files go both ways; question and approval cards are buttons.
"""

from __future__ import annotations

import asyncio
import json
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from agent_runner.protocol import AskQuestionOut, TextOut
from nanoclaw_app.core.events import Event
from nanoclaw_app.core.messages import OutboundMessage
from nanoclaw_app.db import agents, messaging, questions, users
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import Session
from nanoclaw_app.host import Host
from nanoclaw_app.services import chat
from tests import waiting
from tests.fakes.container import write_out
from tests.web.conftest import shot

WAIT = 20.0


def png(width: int = 96, height: int = 64) -> bytes:
    """A small real PNG (a warm gradient), so the page has an image to show inline."""
    def pixel(x: int, y: int) -> bytes:
        return bytes((250 - 90 * y // height, 110 + 120 * x // width, 60 + 150 * y // height))

    rows = b"".join(b"\x00" + b"".join(pixel(x, y) for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.fixture
async def agent_id(web_host: Host) -> str:
    agent = await agents.create(web_host.db, "Nano")
    await chat.ensure_owner_chat(web_host.services, agent.id)
    return agent.id


@asynccontextmanager
async def watching(host: Host) -> AsyncIterator[asyncio.Queue[Event]]:
    async with host.events.subscribe() as queue:
        yield queue


async def next_event(queue: asyncio.Queue[Event], kind: str, predicate: Any = None) -> Event:
    return await waiting.next_event(queue, kind, predicate, timeout=WAIT)


def reply_with(text: str) -> Any:
    return lambda data: data["message"]["direction"] == "out" and data["message"]["text"] == text


async def owner_session(host: Host, agent_id: str) -> tuple[Session, Path]:
    session = (await sessions_db.list_for_agent(host.db, agent_id))[0]
    return session, host.store.dir(agent_id, session.id)


# --------------------------------------------------------------------------------------------- the service and API


async def test_setting_up_the_owner_chat_is_idempotent_and_makes_the_app_user_the_owner(web_host: Host) -> None:
    agent = await agents.create(web_host.db, "Nano")
    first = await chat.ensure_owner_chat(web_host.services, agent.id)
    again = await chat.ensure_owner_chat(web_host.services, agent.id)
    assert first == again
    assert await users.owners(web_host.db) == ["webchat:owner"]
    assert len(await messaging.wirings_for(web_host.db, first)) == 1
    assert [a.name for a in await chat.chat_agents(web_host.services)] == ["Nano"]


async def test_when_someone_else_owns_nanoclaw_the_app_user_still_reaches_the_agent(
    web_host: Host, client: httpx.AsyncClient
) -> None:
    await users.upsert(web_host.db, "telegram:42", "telegram", "Ann")
    await users.grant(web_host.db, "telegram:42", "owner")
    agent = await agents.create(web_host.db, "Nano")
    await chat.ensure_owner_chat(web_host.services, agent.id)
    assert await users.owners(web_host.db) == ["telegram:42"]
    assert await users.is_member(web_host.db, "webchat:owner", agent.id)
    async with watching(web_host) as queue:
        assert (await client.post("/api/chat/messages", json={"text": "hi"})).status_code == 201
        await next_event(queue, "chat.message", reply_with("echo: hi"))


async def test_a_message_sent_by_the_api_gets_the_agents_reply_live_and_in_history(
    web_host: Host, client: httpx.AsyncClient, agent_id: str
) -> None:
    async with watching(web_host) as queue:
        sent = await client.post("/api/chat/messages", json={"text": "  hello agent \n"})
        assert sent.status_code == 201, sent.text
        mine = sent.json()
        assert (mine["direction"], mine["text"]) == ("in", "hello agent")
        await next_event(queue, "chat.typing")
        await next_event(queue, "chat.message", reply_with("echo: hello agent"))
        await next_event(queue, "chat.activity", lambda d: d["state"] == "idle")
    history = (await client.get("/api/chat/messages")).json()
    assert [(m["direction"], m["text"]) for m in history["messages"]] == [("in", "hello agent"),
                                                                          ("out", "echo: hello agent")]
    assert history["agents"] == [{"id": agent_id, "name": "Nano"}]
    assert history["has_more"] is False


async def test_an_empty_message_and_a_chat_without_agent_are_refused_with_the_fix(
    web_host: Host, client: httpx.AsyncClient
) -> None:
    no_agent = await client.post("/api/chat/messages", json={"text": "hello"})
    assert no_agent.status_code == 400
    assert "finish setup" in no_agent.json()["error"]
    assert (await client.get("/api/chat/messages")).json()["agents"] == []
    agent = await agents.create(web_host.db, "Nano")
    await chat.ensure_owner_chat(web_host.services, agent.id)
    empty = await client.post("/api/chat/messages", json={"text": "   "})
    assert empty.status_code == 400
    assert "type a message" in empty.json()["error"]
    for body in (b'{"words": "hello"}', b"[1, 2]", b"{not json"):
        bad = await client.post("/api/chat/messages", content=body, headers={"content-type": "application/json"})
        assert bad.status_code == 400, body
        assert "text" in bad.json()["error"]
    assert (await client.get("/api/chat/messages?limit=0")).status_code == 400
    schema = (await client.get("/schema/openapi.json")).json()
    assert "/api/chat/messages" in schema["paths"]
    assert "/api/chat/cards/{question_id}" in schema["paths"]


async def test_uploaded_files_reach_the_session_inbox_and_download_safely(
    web_host: Host, client: httpx.AsyncClient, agent_id: str
) -> None:
    image = png()
    async with watching(web_host) as queue:
        sent = await client.post(
            "/api/chat/messages", data={"text": "have a look"},
            files=[("files", ("../notes final.txt", b"buy milk", "text/plain")),
                   ("files", ("chart.png", image, "image/png"))],
        )
        assert sent.status_code == 201, sent.text
        await next_event(queue, "chat.message", reply_with("echo: have a look"))
    message = sent.json()
    assert [f["name"] for f in message["files"]] == ["notes final.txt", "chart.png"]
    _, folder = await owner_session(web_host, agent_id)
    assert (folder / "inbox" / message["id"] / "notes final.txt").read_bytes() == b"buy milk"
    assert (folder / "inbox" / message["id"] / "chart.png").read_bytes() == image

    text_file = await client.get(message["files"][0]["url"])
    assert text_file.status_code == 200
    assert text_file.content == b"buy milk"
    assert text_file.headers["content-type"].startswith("text/plain")
    assert text_file.headers["content-disposition"].startswith("attachment")
    picture = await client.get(message["files"][1]["url"])
    assert picture.headers["content-type"] == "image/png"
    assert picture.headers["content-disposition"].startswith("inline")
    assert (await client.get(f"/api/chat/files/{message['id']}/nanoclaw.db")).status_code == 404
    assert (await client.get("/api/chat/files/msg-nope/x.txt")).status_code == 404


async def test_a_file_the_agent_sends_can_be_downloaded(
    web_host: Host, client: httpx.AsyncClient, agent_id: str
) -> None:
    async with watching(web_host) as queue:
        await client.post("/api/chat/messages", json={"text": "make a report"})
        await next_event(queue, "chat.message", reply_with("echo: make a report"))
        _, folder = await owner_session(web_host, agent_id)
        row_id = "out-report-1"
        (folder / "outbox" / row_id).mkdir(parents=True)
        (folder / "outbox" / row_id / "report.csv").write_text("a,b\n1,2\n")
        write_out(folder, TextOut(text="Here it is", files=["report.csv"]).to_json(), channel_type="webchat",
                  platform_id="owner", row_id=row_id)
        event = await next_event(queue, "chat.message", reply_with("Here it is"))
    url = event.data["message"]["files"][0]["url"]
    download = await client.get(url)
    assert download.content == b"a,b\n1,2\n"
    assert 'filename="report.csv"' in download.headers["content-disposition"]


# --------------------------------------------------------------------------------------------- the page


async def open_chat(page: Any, base_url: str) -> None:
    await page.goto(f"{base_url}/chat")
    await page.wait_for_selector("body[data-chat-ready=true]")


async def test_the_owner_types_and_the_reply_streams_in(
    web_host: Host, page: Any, base_url: str, agent_id: str
) -> None:
    web_host.runtime.delay = 1.0  # type: ignore[attr-defined]  # long enough to see the agent at work
    await open_chat(page, base_url)
    await expect(page.locator("#chat-empty")).to_be_visible()
    await expect(page.locator("#chat-empty")).to_contain_text("Say hello to Nano")
    box = page.locator("#chat-text")
    await box.fill("first line")
    await box.press("Shift+Enter")
    await box.press_sequentially("second line")
    await box.press("Enter")
    await expect(page.locator("li.msg.mine .msg-text")).to_have_text("first line\nsecond line")
    await expect(page.locator("#chat-typing")).to_be_visible()
    await expect(page.locator("#chat-typing-text")).to_contain_text("Nano")
    await expect(page.locator("li.msg.theirs .msg-text")).to_have_text("echo: first line\nsecond line")
    await expect(page.locator("#chat-typing")).to_be_hidden()
    await expect(box).to_have_value("")
    await expect(page.locator("#chat-empty")).to_be_hidden()


async def test_files_attach_by_button_and_by_dropping_and_reach_the_agent(
    web_host: Host, page: Any, base_url: str, agent_id: str
) -> None:
    await open_chat(page, base_url)
    await page.set_input_files("#chat-file-input", files=[
        {"name": "photo.png", "mimeType": "image/png", "buffer": png()},
    ])
    await page.evaluate("""() => {
        const data = new DataTransfer();
        data.items.add(new File(["dropped text"], "dropped.txt", {type: "text/plain"}));
        const chat = document.getElementById("chat");
        chat.dispatchEvent(new DragEvent("dragenter", {dataTransfer: data, bubbles: true}));
        chat.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
    }""")
    await expect(page.locator(".pending-file")).to_have_count(2)
    await page.locator("#chat-text").fill("two files")
    await page.locator("#chat-send").click()
    await expect(page.locator("li.msg.theirs .msg-text")).to_have_text("echo: two files")
    await expect(page.locator(".pending-file")).to_have_count(0)
    mine = page.locator("li.msg.mine")
    await expect(mine.locator(".msg-image img")).to_have_attribute("alt", "photo.png")
    await expect(mine.locator(".file-chip .file-name")).to_have_text("dropped.txt")
    assert await mine.locator(".msg-image img").evaluate("img => img.complete && img.naturalWidth") == 96

    message_id = await mine.get_attribute("data-id")
    _, folder = await owner_session(web_host, agent_id)
    assert (folder / "inbox" / str(message_id) / "dropped.txt").read_bytes() == b"dropped text"
    assert (folder / "inbox" / str(message_id) / "photo.png").read_bytes()[:4] == b"\x89PNG"


async def test_a_question_card_is_answered_with_a_click(
    web_host: Host, page: Any, base_url: str, agent_id: str
) -> None:
    await open_chat(page, base_url)
    await page.locator("#chat-text").fill("plan lunch")
    await page.locator("#chat-text").press("Enter")
    await expect(page.locator("li.msg.theirs")).to_have_count(1)
    session, folder = await owner_session(web_host, agent_id)
    card = AskQuestionOut(question_id="q-lunch", title="Lunch", question="Pizza or soup today?",
                          options=[{"label": "Pizza", "value": "0"}, {"label": "Soup", "value": "1"}])
    write_out(folder, card.to_json(), channel_type="webchat", platform_id="owner")

    bubble = page.locator("li.msg.has-card")
    await expect(bubble.locator(".card-title")).to_have_text("Lunch")
    await expect(bubble.locator(".msg-text")).to_have_text("Pizza or soup today?")
    await bubble.get_by_role("button", name="Soup").click()
    await expect(bubble.locator(".card-option.chosen")).to_have_text("✓ Soup")
    await expect(bubble.get_by_role("button", name="Pizza")).to_be_disabled()

    stored = await questions.get(web_host.db, "q-lunch")
    assert stored is not None
    assert stored.answered_at is not None
    answer = await web_host.store.read(
        folder, lambda conn: conn.execute("SELECT content FROM messages_in WHERE id = 'q-lunch:answer'").fetchone(),
        with_outbound=False,
    )
    assert json.loads(answer[0])["selected_option"] == "1"
    assert session.messaging_group_id is not None

    await page.reload()
    await page.wait_for_selector("body[data-chat-ready=true]")
    await expect(page.locator("li.msg.has-card .card-option.chosen")).to_have_text("✓ Soup")


async def test_an_approval_for_the_owner_shows_inline_and_approving_applies_it(
    web_host: Host, page: Any, base_url: str, agent_id: str
) -> None:
    await open_chat(page, base_url)
    await page.locator("#chat-text").fill("add my notes server")
    await page.locator("#chat-text").press("Enter")
    await expect(page.locator("li.msg.theirs")).to_have_count(1)
    session, _ = await owner_session(web_host, agent_id)
    approval_id = await web_host.approvals.request_approval(
        session=session, action="add_mcp_server", payload={"name": "notes", "command": "notes-mcp"},
        title="Add an MCP server", question="Nano wants to add the MCP server “notes” (notes-mcp). Allow it?",
    )
    assert approval_id is not None

    card = page.locator("li.msg.has-card")
    await expect(card.locator(".card-title")).to_have_text("Add an MCP server")
    await card.get_by_role("button", name="Approve").click()
    await expect(card.locator(".card-option.chosen")).to_have_text("✓ Approve")
    await expect(card.get_by_role("button", name="Reject")).to_be_disabled()
    await expect(card.locator(".card-outcome")).to_have_text("✅ Approved by Owner")
    config = await agents.get_config(web_host.db, agent_id)
    assert config is not None
    assert "notes" in json.loads(config.mcp_servers)


async def test_without_an_agent_the_page_says_to_finish_setup(web_host: Host, page: Any, base_url: str) -> None:
    await open_chat(page, base_url)
    setup = page.locator("#chat-setup")
    await expect(setup).to_be_visible()
    await expect(setup.get_by_role("link", name="Finish setup")).to_have_attribute("href", "/setup")
    await expect(page.locator("#chat-text")).to_be_disabled()
    await shot(page, "chat-no-agent")


async def test_a_failed_send_shows_an_error_bubble_that_can_be_retried(
    web_host: Host, page: Any, base_url: str, agent_id: str
) -> None:
    await open_chat(page, base_url)
    chat_id = (await messaging.find(web_host.db, "webchat", "owner"))
    assert chat_id is not None
    wiring = (await messaging.wirings_for(web_host.db, chat_id.id))[0]
    await messaging.unwire(web_host.db, wiring.id)  # the page still thinks an agent answers
    await page.locator("#chat-text").fill("are you there?")
    await page.locator("#chat-text").press("Enter")
    failed = page.locator("li.msg.failed")
    await expect(failed.locator(".send-error")).to_contain_text("finish setup")
    await expect(failed.locator(".msg-text")).to_have_text("are you there?")

    await chat.ensure_owner_chat(web_host.services, agent_id)
    await failed.get_by_role("button", name="Try again").click()
    await expect(page.locator("li.msg.failed")).to_have_count(0)
    await expect(page.locator("li.msg.theirs .msg-text")).to_have_text("echo: are you there?")


async def test_screenshot_of_a_conversation(web_host: Host, page: Any, base_url: str, agent_id: str) -> None:
    await open_chat(page, base_url)
    box = page.locator("#chat-text")
    await box.fill("Hi Nano! Can you summarise this chart for me?")
    await page.set_input_files("#chat-file-input", files=[
        {"name": "sales.png", "mimeType": "image/png", "buffer": png(180, 110)},
    ])
    await box.press("Enter")
    await expect(page.locator("li.msg.theirs")).to_have_count(1)
    _, folder = await owner_session(web_host, agent_id)
    (folder / "outbox" / "out-shot-1").mkdir(parents=True)
    (folder / "outbox" / "out-shot-1" / "summary.pdf").write_bytes(b"%PDF-1.4 summary")
    write_out(folder, TextOut(text="Sales rose **12%** in March. Details: `summary.pdf`",
                              files=["summary.pdf"]).to_json(),
              channel_type="webchat", platform_id="owner", row_id="out-shot-1")
    card = AskQuestionOut(question_id="q-shot", title="Next step", question="Shall I email the summary to the team?",
                          options=[{"label": "Yes, send it", "value": "0"}, {"label": "Not now", "value": "1"}])
    write_out(folder, card.to_json(), channel_type="webchat", platform_id="owner")
    await expect(page.locator("li.msg.has-card")).to_have_count(1)
    await expect(page.locator("li.msg.theirs .file-chip")).to_have_count(1)
    await page.locator("li.msg.has-card").get_by_role("button", name="Yes, send it").click()
    await expect(page.locator(".card-option.chosen")).to_have_count(1)
    await box.fill("Thanks!")
    await shot(page, "chat")


async def test_earlier_messages_load_on_request_and_edits_and_reactions_show_live(
    web_host: Host, page: Any, base_url: str, agent_id: str
) -> None:
    adapter = web_host.channels.get("webchat")
    assert adapter is not None
    ids = [await adapter.deliver("owner", None, OutboundMessage(kind="text", delivery_id=f"out-{i}", text=f"note {i}"))
           for i in range(55)]
    await open_chat(page, base_url)
    bubbles = page.locator("li.msg.theirs")
    await expect(bubbles).to_have_count(50)
    await expect(bubbles.first).to_contain_text("note 5")
    await page.get_by_role("button", name="Show earlier messages").click()
    await expect(bubbles).to_have_count(55)
    await expect(bubbles.first).to_contain_text("note 0")
    await expect(page.get_by_role("button", name="Show earlier messages")).to_be_hidden()

    await adapter.deliver("owner", None, OutboundMessage(kind="edit", delivery_id="out-e", text="note 54, corrected",
                                                         target_message_id=ids[-1]))
    await adapter.deliver("owner", None, OutboundMessage(kind="reaction", delivery_id="out-r", emoji="🎉",
                                                         target_message_id=ids[-1]))
    last = bubbles.last
    await expect(last.locator(".msg-text")).to_have_text("note 54, corrected")
    await expect(last.locator(".msg-edited")).to_have_text("edited")
    await expect(last.locator(".reaction")).to_have_text("🎉")
