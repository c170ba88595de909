"""Our tools called directly over a real session folder (reference §3), and their system rows applied by the host."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agent_runner.protocol import InboundRow, OutboundRow, row_from_mapping
from agent_runner.session_db import SessionDB
from agent_runner.tools.base import ToolError, ToolSpec
from agent_runner.tools.ours import CurrentBatch, ToolContext, our_tools
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.system_actions import SystemActions
from nanoclaw_app.db import agents, messaging
from nanoclaw_app.db import sessions as sessions_db
from tests.runner.conftest import FAMILY, HELPER, Session

EXPECTED = {
    "send_message", "send_file", "edit_message", "add_reaction", "ask_user_question", "send_card", "schedule_task",
    "list_tasks", "update_task", "cancel_task", "pause_task", "resume_task", "create_agent", "install_packages",
    "add_mcp_server", "request_credential",
}


def inbound(folder: Path, row_id: str) -> InboundRow:
    conn = sqlite3.connect(folder / "inbound.db")
    conn.row_factory = sqlite3.Row
    try:
        found = conn.execute("SELECT * FROM messages_in WHERE id = ?", (row_id,)).fetchone()
        row: InboundRow = row_from_mapping(InboundRow, found)
        return row
    finally:
        conn.close()


class Tools:
    """Our tools bound to a context whose current batch the test sets."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.ctx = ToolContext(config=session.config(), db=SessionDB(session.folder), batch=CurrentBatch())
        self.specs: dict[str, ToolSpec] = {t.name: t for t in our_tools(self.ctx)}

    def answering(self, *row_ids: str) -> None:
        self.ctx.batch.rows = [inbound(self.session.folder, i) for i in row_ids]

    async def __call__(self, tool: str, /, **args: Any) -> str:
        return await self.specs[tool].handler(args)


@pytest.fixture
def tools(session: Session) -> Tools:
    return Tools(session)


def test_every_tool_is_offered_with_an_object_schema(tools: Tools) -> None:
    assert set(tools.specs) == EXPECTED
    for spec in tools.specs.values():
        assert spec.input_schema["type"] == "object"
        assert set(spec.input_schema["required"]) <= set(spec.input_schema["properties"])
        assert spec.description
    assert tools.specs["ask_user_question"].declared_timeout_ms is not None


# ------------------------------------------------------------------------------------------------- send_message


async def test_send_message_answers_the_chat_being_answered(session: Session, tools: Tools) -> None:
    row_id, _ = await session.chat("hi", thread="th-1")
    tools.answering(row_id)
    result = await tools("send_message", text="on it")
    (out,) = session.outbound()
    assert result == f"Sent as message {out['seq']}."
    assert (out["channel_type"], out["platform_id"], out["thread_id"]) == ("test", "chat-1", "th-1")
    assert out["in_reply_to"] == row_id
    assert out["content"]["text"] == "on it"
    assert tools.ctx.sent == 1


async def test_send_message_to_a_named_agent_goes_on_the_agent_channel(session: Session, tools: Tools) -> None:
    row_id, _ = await session.chat("ask the helper")
    tools.answering(row_id)
    assert (await tools("send_message", text="please book", to="Helper")).startswith("Sent to helper")
    (out,) = session.outbound()
    assert (out["channel_type"], out["platform_id"], out["thread_id"]) == ("agent", "ag-helper", None)
    assert out["in_reply_to"] is None  # only a row from that agent may steer the agent return path


async def test_send_message_to_another_chat_gets_no_thread(session: Session, tools: Tools) -> None:
    row_id, _ = await session.chat("tell work", thread="th-1")
    tools.answering(row_id)
    await tools("send_message", text="late today", to="work")
    (out,) = session.outbound()
    assert (out["platform_id"], out["thread_id"], out["in_reply_to"]) == ("chat-2", None, row_id)


async def test_an_unknown_destination_is_refused_with_the_valid_names(tools: Tools) -> None:
    with pytest.raises(ToolError, match='"family", "helper", "work"'):
        await tools("send_message", text="x", to="boss")


async def test_without_routing_or_batch_several_destinations_need_a_name(session: Session, tools: Tools) -> None:
    await session.store.write_projection(session.folder, [], (None, None, None))
    with pytest.raises(ToolError, match="nobody to send to"):
        await tools("send_message", text="x")
    await session.store.write_projection(session.folder, [FAMILY, HELPER], (None, None, None))
    with pytest.raises(ToolError, match="say who this is for"):
        await tools("send_message", text="x")
    await session.store.write_projection(session.folder, [HELPER], (None, None, None))
    await tools("send_message", text="x")
    assert session.outbound()[0]["platform_id"] == "ag-helper"


async def test_bad_arguments_are_errors_the_model_can_fix(tools: Tools) -> None:
    with pytest.raises(ToolError, match="`text` is required"):
        await tools("send_message")
    with pytest.raises(ToolError, match="must be a string"):
        await tools("send_message", text=5)


# ------------------------------------------------------------------------------------------------- send_file


async def test_send_file_copies_the_file_into_the_outbox_of_its_row(session: Session, tools: Tools) -> None:
    session.agent_dir.mkdir(parents=True)
    (session.agent_dir / "report.txt").write_text("all good")
    await tools("send_file", path="report.txt", text="here it is", filename="summary.txt")
    (out,) = session.outbound()
    assert out["content"] == {"text": "here it is", "files": ["summary.txt"]}
    assert (session.folder / "outbox" / out["id"] / "summary.txt").read_text() == "all good"


async def test_send_file_refuses_missing_files_and_unsafe_names(session: Session, tools: Tools,
                                                                tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="is not a file"):
        await tools("send_file", path="/nonexistent/file.txt")
    source = tmp_path / "x.txt"
    source.write_text("x")
    with pytest.raises(ToolError, match="plain file name"):
        await tools("send_file", path=str(source), filename="../../etc/passwd")
    assert session.outbound() == []
    assert list((session.folder / "outbox").iterdir()) == []


# ------------------------------------------------------------------------------------------------- edit, react


async def test_edit_message_edits_the_agents_own_message_where_it_was_sent(session: Session, tools: Tools) -> None:
    row_id, _ = await session.chat("hi", thread="th-1")
    tools.answering(row_id)
    await tools("send_message", text="draft")
    seq = session.outbound()[0]["seq"]
    await tools("edit_message", message_id=seq, text="final")
    edit = session.outbound()[1]
    assert edit["content"] == {"type": "edit", "message_seq": seq, "text": "final"}
    assert (edit["platform_id"], edit["thread_id"]) == ("chat-1", "th-1")


async def test_edit_message_refuses_other_peoples_and_unknown_messages(session: Session, tools: Tools) -> None:
    _, seq = await session.chat("hi")
    with pytest.raises(ToolError, match="not sent by you"):
        await tools("edit_message", message_id=seq, text="x")
    with pytest.raises(ToolError, match="no message 99"):
        await tools("edit_message", message_id=99, text="x")


async def test_add_reaction_reacts_to_a_received_message(session: Session, tools: Tools) -> None:
    _, seq = await session.chat("great news!", thread="th-2")
    await tools("add_reaction", message_id=str(seq), emoji="🎉")
    (out,) = session.outbound()
    assert out["content"] == {"type": "reaction", "message_seq": seq, "emoji": "🎉"}
    assert out["thread_id"] == "th-2"


async def test_reactions_to_agent_messages_are_refused(session: Session, tools: Tools) -> None:
    _, seq = await session.from_agent("hello")
    with pytest.raises(ToolError, match="not a chat message"):
        await tools("add_reaction", message_id=seq, emoji="👍")


# ------------------------------------------------------------------------------------------------- cards


async def test_send_card_writes_a_card_with_a_text_fallback(session: Session, tools: Tools) -> None:
    await tools("send_card", card={"title": "Weather", "description": "Sunny",
                                   "links": [{"label": "Forecast", "url": "https://example.org/w"}]})
    (out,) = session.outbound()
    content = out["content"]
    assert content["type"] == "card"
    assert content["links"] == [{"label": "Forecast", "url": "https://example.org/w"}]
    assert content["fallback_text"] == "Weather\nSunny\nForecast: https://example.org/w"


async def test_send_card_refuses_non_web_links(tools: Tools) -> None:
    with pytest.raises(ToolError, match="http"):
        await tools("send_card", card={"title": "x", "links": [{"label": "run", "url": "javascript:alert(1)"}]})


async def test_questions_and_cards_are_not_for_agents(tools: Tools) -> None:
    with pytest.raises(ToolError, match="for people"):
        await tools("ask_user_question", title="t", question="q", options=["a"], to="helper")


# ------------------------------------------------------------------------------------------------- system actions


def _action(session: Session, index: int = -1) -> dict[str, Any]:
    row = session.outbound()[index]
    assert row["kind"] == "system"
    return row["content"]  # type: ignore[no-any-return]


async def test_schedule_task_asks_the_host_with_its_own_task_id(session: Session, tools: Tools) -> None:
    row_id, _ = await session.chat("remind me")
    tools.answering(row_id)
    result = await tools("schedule_task", prompt="stretch", process_after="2030-01-01T09:00",
                         recurrence="0 9 * * 1-5")
    content = _action(session)
    payload = content["payload"]
    assert content["action"] == "schedule_task"
    assert payload["task_id"] in result
    assert {k: payload[k] for k in ("prompt", "process_after", "recurrence")} == {
        "prompt": "stretch", "process_after": "2030-01-01T09:00", "recurrence": "0 9 * * 1-5"}
    assert content["request_id"]
    assert session.outbound()[0]["in_reply_to"] == row_id


async def test_schedule_task_checks_what_it_can_before_asking(tools: Tools) -> None:
    with pytest.raises(ToolError, match="process_after"):
        await tools("schedule_task", prompt="x")
    with pytest.raises(ToolError, match="ISO"):
        await tools("schedule_task", prompt="x", process_after="tomorrow")
    with pytest.raises(ToolError, match="five fields"):
        await tools("schedule_task", prompt="x", recurrence="every day")


async def test_update_task_sends_only_what_changes(session: Session, tools: Tools) -> None:
    await tools("update_task", task_id="task-1", recurrence="", script="")
    assert _action(session)["payload"] == {"task_id": "task-1", "recurrence": "", "script": ""}
    with pytest.raises(ToolError, match="nothing to change"):
        await tools("update_task", task_id="task-1")


@pytest.mark.parametrize("name", ["cancel_task", "pause_task", "resume_task"])
async def test_series_actions_name_the_task(session: Session, tools: Tools, name: str) -> None:
    await tools(name, task_id="task-7")
    content = _action(session)
    assert (content["action"], content["payload"]) == (name, {"task_id": "task-7"})


async def test_list_tasks_reads_the_sessions_tasks(session: Session, tools: Tools) -> None:
    assert await tools("list_tasks") == "No scheduled tasks."
    first, _ = await session.task("water the plants", process_after="2030-01-01T07:00:00.000Z", recurrence="0 8 * * *")
    await session.task("water the plants", process_after="2030-01-02T07:00:00.000Z", series_id=first)
    listing = await tools("list_tasks")
    assert listing == f"- {first} [pending] next Tue 1 Jan 2030, 8:00 AM, repeats '0 8 * * *': water the plants"
    with pytest.raises(ToolError):
        await tools("list_tasks", status="done")


async def test_self_modification_requests_carry_the_hosts_payload_keys(session: Session, tools: Tools) -> None:
    await tools("install_packages", apt=["ffmpeg"], pip=["yt-dlp"], reason="convert videos")
    assert _action(session)["payload"] == {"apt": ["ffmpeg"], "pip": ["yt-dlp"], "reason": "convert videos"}
    await tools("add_mcp_server", name="weather", command="npx", args=["-y", "weather-mcp"], env={"UNITS": "metric"})
    assert _action(session)["payload"] == {"name": "weather", "command": "npx", "args": ["-y", "weather-mcp"],
                                           "env": {"UNITS": "metric"}}
    await tools("create_agent", name="Researcher", instructions="Find sources.")
    assert _action(session)["payload"] == {"name": "Researcher", "instructions": "Find sources."}
    with pytest.raises(ToolError, match="at least one package"):
        await tools("install_packages", reason="nothing")


# ------------------------------------------------------------------------------------------------- host round trip


class Approvals:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, **kwargs: Any) -> str | None:
        self.calls.append(kwargs)
        return "appr-1"


async def test_the_host_applies_what_the_tools_ask_for(ctx: CoreContext, tmp_path: Path) -> None:
    agent = await agents.create(ctx.db, "Helper")
    chat = await messaging.create(ctx.db, "test", "chat-1", name="Family")
    await messaging.wire(ctx.db, chat.id, agent.id)
    host_session, _ = await sessions_db.find_or_create(ctx.db, agent.id, "shared", chat.id, None)
    folder = await ctx.store.create(agent.id, host_session.id)
    harness = Session(ctx.store, folder, tmp_path)
    tools = Tools(harness)
    await tools("schedule_task", prompt="stretch", process_after="2030-01-01T09:00", recurrence="0 9 * * *")
    task_id = _action(harness)["payload"]["task_id"]
    await tools("install_packages", apt=["ffmpeg"], reason="video")
    await tools("add_mcp_server", name="weather", command="npx", args=["weather-mcp"])
    await tools("create_agent", name="Researcher")
    approvals = Approvals()
    actions = SystemActions(ctx, request_approval=approvals)
    async with ctx.events.subscribe() as events:
        for raw in [r for r in harness.outbound() if r["kind"] == "system"]:
            row = OutboundRow(**{**raw, "content": json.dumps(raw["content"])})
            await actions.apply(host_session, row)
        kinds = []
        while not events.empty():
            kinds.append(events.get_nowait().kind)
    assert not [k for k in kinds if k.endswith((".refused", ".malformed", ".unknown"))], kinds
    assert [c["action"] for c in approvals.calls] == ["install_packages", "add_mcp_server", "create_agent"]
    task = inbound(folder, task_id)
    assert (task.kind, task.recurrence) == ("task", "0 9 * * *")
    assert [a.name for a in await agents.list_all(ctx.db)] == ["Helper"]  # a new agent waits for an admin
