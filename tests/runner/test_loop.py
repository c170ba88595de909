"""The runner loop end to end over a real session folder, with a scripted provider (reference §8.2 poll-loop and
integration tests, plus what the original got wrong: in_reply_to from tools, nudging only once)."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from agent_runner.loop import CLEARED
from agent_runner.session_db import SessionDB
from nanoclaw_app.timeutil import later_iso
from tests.fakes.provider import Reply, ScriptedProvider, ToolCall
from tests.runner.conftest import Session, until


async def test_a_message_gets_a_reply_in_its_chat_and_thread(session: Session) -> None:
    provider = ScriptedProvider()
    row_id, seq = await session.chat("hello there", thread="th-7")
    async with session.running(provider):
        out = await until(session.outbound, "a reply")
    assert len(out) == 1
    reply = out[0]
    assert reply["content"]["text"] == "echo: hello there"
    assert (reply["channel_type"], reply["platform_id"], reply["thread_id"]) == ("test", "chat-1", "th-7")
    assert reply["in_reply_to"] == row_id
    assert reply["seq"] % 2 == 1
    assert reply["seq"] > seq
    assert session.acks() == {row_id: "completed"}
    assert (session.folder / ".heartbeat").exists()
    assert 'from="family"' in provider.prompts[0]
    assert "You are Nano" in provider.system_prompts[0]
    assert '"family"' in provider.system_prompts[0]
    assert provider.cwds == [session.agent_dir]


async def test_the_agent_calls_our_tool_mid_turn_and_its_message_answers_the_batch(session: Session) -> None:
    provider = ScriptedProvider(replies=[
        Reply(tools=[ToolCall("send_message", {"text": "working on it…"})], text='<message to="family">done</message>'),
    ])
    row_id, _ = await session.chat("do the thing", thread="th-1")
    async with session.running(provider):
        await until(lambda: len(session.outbound()) == 2, "two messages")
    first, second = session.outbound()
    assert first["content"]["text"] == "working on it…"
    assert first["in_reply_to"] == row_id  # the original lost this across its MCP process boundary
    assert first["thread_id"] == "th-1"
    assert second["content"]["text"] == "done"
    assert provider.tool_results[0][1].startswith("Sent")
    assert "send_message" in provider.tool_names[0]


async def test_one_answer_can_address_several_destinations(session: Session) -> None:
    provider = ScriptedProvider(replies=[
        '<message to="family">see you at 6</message>\n<internal>note to self</internal>\n'
        '<message to="helper">book a table for 6</message>\n<message to="work">running late</message>'
        '<message to="nobody">dropped</message>',
    ])
    helper_row, _ = await session.from_agent("the restaurant is open")
    await session.chat("dinner?", thread="th-2")
    async with session.running(provider):
        await until(lambda: len(session.outbound()) == 3, "three messages")
    by_text = {r["content"]["text"]: r for r in session.outbound()}
    assert set(by_text) == {"see you at 6", "book a table for 6", "running late"}
    family = by_text["see you at 6"]
    assert (family["channel_type"], family["platform_id"], family["thread_id"]) == ("test", "chat-1", "th-2")
    helper = by_text["book a table for 6"]
    assert (helper["channel_type"], helper["platform_id"]) == ("agent", "ag-helper")
    assert helper["in_reply_to"] == helper_row  # the agent return path follows the row it came from
    work = by_text["running late"]
    assert (work["platform_id"], work["thread_id"], work["in_reply_to"]) == ("chat-2", None, None)
    assert len(provider.prompts) == 1  # something was delivered, so no nudge despite the unknown name


async def test_messages_arriving_during_a_turn_are_pushed_into_the_running_query(session: Session) -> None:
    gate = asyncio.Event()
    provider = ScriptedProvider(replies=[
        Reply(text='<message to="family">first answer</message>', gate=gate),
        Reply(tools=[ToolCall("send_message", {"text": "on the second"})],
              text='<message to="family">second answer</message>'),
    ])
    first_id, _ = await session.chat("first question")
    async with session.running(provider):
        await until(lambda: provider.prompts, "the first prompt")
        second_id, _ = await session.chat("second question", thread="th-9")
        await until(lambda: len(provider.prompts) == 2, "the pushed follow-up")
        gate.set()
        await until(lambda: len(session.outbound()) == 3, "both answers")
    assert len(provider.queries) == 1
    assert "second question" in provider.prompts[1]
    assert "first question" not in provider.prompts[1]
    texts = session.texts()
    assert texts == ["first answer", "on the second", "second answer"]
    tool_row = session.outbound()[1]
    assert (tool_row["in_reply_to"], tool_row["thread_id"]) == (second_id, "th-9")  # stamped from the current turn
    assert session.acks() == {first_id: "completed", second_id: "completed"}


async def test_clear_resets_the_conversation_and_says_so(session: Session) -> None:
    provider = ScriptedProvider()
    await session.chat("remember the number 7")
    async with session.running(provider):
        await until(lambda: session.state("continuation:scripted") == "conv-1", "a saved continuation")
        clear_id, _ = await session.chat("/clear", thread="th-3")
        await until(lambda: CLEARED in session.texts(), "the confirmation")
        assert session.state("continuation:scripted") is None
        await session.chat("what was the number?")
        await until(lambda: len(provider.queries) == 2, "a fresh query")
    cleared = next(r for r in session.outbound() if r["content"]["text"] == CLEARED)
    assert (cleared["in_reply_to"], cleared["thread_id"]) == (clear_id, "th-3")
    assert session.acks()[clear_id] == "completed"
    assert provider.continuations == [None, None]  # the second query starts fresh
    assert all("/clear" not in p for p in provider.prompts)


async def test_a_waiting_clear_ends_the_running_query_after_its_turns(session: Session) -> None:
    gate = asyncio.Event()
    provider = ScriptedProvider(replies=[Reply(text='<message to="family">slow answer</message>', gate=gate)])
    await session.chat("long job")
    async with session.running(provider):
        await until(lambda: provider.prompts, "the prompt")
        await session.chat("/clear")
        await until(lambda: provider.queries[0].ended, "the query to be ended for the command")
        gate.set()
        await until(lambda: CLEARED in session.texts(), "the confirmation")
    assert session.texts() == ["slow answer", CLEARED]
    assert len(provider.prompts) == 1


async def test_an_answer_joins_the_stored_conversation_only_with_its_rows_completed(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The runner dies while writing the answer: its rows stay open and are retried, so the conversation a retry
    # resumes must not already hold that answer (the model would read the turn twice).
    provider = ScriptedProvider(replies=[Reply(text='<message to="family">noted</message>', continuation="conv-1+1")])
    attempts: list[object] = []

    def die_writing(*args: object, **kwargs: object) -> list[int]:
        attempts.append(args)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(SessionDB, "write_messages", die_writing)
    await session.chat("remember the number 7")
    async with session.running(provider):
        await until(lambda: attempts, "the answer being written")
    assert session.outbound() == []
    assert session.state("continuation:scripted") == "conv-1"


async def test_the_conversation_resumes_after_the_runner_restarts(session: Session) -> None:
    first = ScriptedProvider()
    await session.chat("hi")
    async with session.running(first):
        await until(session.outbound, "a reply")
    assert session.state("continuation:scripted") == "conv-1"
    second = ScriptedProvider()
    await session.chat("still there?")
    async with session.running(second):
        await until(lambda: len(session.outbound()) == 2, "the second reply")
    assert second.continuations == ["conv-1"]


async def test_a_provider_error_reaches_the_user_and_fails_the_rows(session: Session) -> None:
    provider = ScriptedProvider(replies=[Reply(error="model overloaded")])
    row_id, _ = await session.chat("hello", thread="th-4")
    async with session.running(provider):
        await until(lambda: session.acks().get(row_id) == "failed", "the failed ack")
    (error,) = session.outbound()
    assert error["content"]["text"] == "Error: model overloaded"
    assert (error["platform_id"], error["thread_id"], error["in_reply_to"]) == ("chat-1", "th-4", row_id)


async def test_an_invalid_continuation_is_cleared_and_the_batch_retried_fresh(session: Session) -> None:
    session.set_state("continuation:scripted", "stale")
    provider = ScriptedProvider(invalid_continuations={"stale"})
    row_id, _ = await session.chat("hello again")
    async with session.running(provider):
        await until(session.outbound, "a reply")
    assert provider.continuations == ["stale", None]
    assert session.texts() == ["echo: hello again"]
    assert session.acks() == {row_id: "completed"}
    assert session.state("continuation:scripted") == "conv-1"


async def test_context_rows_wait_for_a_row_addressed_to_the_agent(session: Session) -> None:
    provider = ScriptedProvider()
    context_id, _ = await session.chat("we should get pizza", sender="Bob", trigger=0)
    async with session.running(provider) as loop:
        await until(lambda: loop.polls >= 2, "the runner to look twice")
        assert provider.prompts == []
        assert session.acks() == {}
        addressed_id, _ = await session.chat("what do you think?")
        await until(session.outbound, "a reply")
    (prompt,) = provider.prompts
    assert prompt.index("we should get pizza") < prompt.index("<addressed_to_you")
    assert "<thread_context" in prompt
    assert session.acks() == {context_id: "completed", addressed_id: "completed"}


async def test_on_wake_rows_are_read_only_by_the_first_poll(session: Session) -> None:
    provider = ScriptedProvider()
    wake_id, _ = await session.system_note("you restarted with new packages; check them", on_wake=1)
    async with session.running(provider) as loop:
        await until(lambda: provider.prompts, "the first prompt")
        assert "<system_note" in provider.prompts[0]
        assert "check them" in provider.prompts[0]
        await until(lambda: session.acks().get(wake_id) == "completed", "the note done")
        late_id, _ = await session.system_note("a note only a fresh runner may read", on_wake=1)
        polls = loop.polls
        await until(lambda: loop.polls > polls + 1, "later polls")
        await session.chat("hello")
        await until(lambda: len(provider.prompts) == 2, "the second prompt")
    assert "fresh runner" not in provider.prompts[1]
    assert late_id not in session.acks()


async def test_an_unwrapped_answer_is_nudged_once_only(session: Session) -> None:
    provider = ScriptedProvider(replies=["Sure, see you at 6!", "See you at 6!"])
    row_id, _ = await session.chat("dinner at 6?")
    async with session.running(provider, quiet_seconds=0.2):
        await until(lambda: provider.queries and provider.queries[0].finished, "the quiet query to end")
    assert len(provider.prompts) == 2
    assert '<message to="NAME">' in provider.prompts[1]
    assert '"family"' in provider.prompts[1]
    assert session.outbound() == []
    assert session.acks() == {row_id: "completed"}


async def test_a_nudged_agent_that_re_sends_wrapped_is_delivered(session: Session) -> None:
    provider = ScriptedProvider(replies=['<message to="Famly">hi</message>', '<message to="family">hi</message>'])
    await session.chat("hello")
    async with session.running(provider):
        await until(session.outbound, "the re-sent reply")
    assert "Famly" in provider.prompts[1]
    assert session.texts() == ["hi"]


async def test_no_nudge_when_the_agent_replied_through_a_tool(session: Session) -> None:
    provider = ScriptedProvider(replies=[
        Reply(tools=[ToolCall("send_message", {"text": "done!"})], text="Sent the user a message."),
    ])
    await session.chat("please do it")
    async with session.running(provider, quiet_seconds=0.2):
        await until(lambda: provider.queries and provider.queries[0].finished, "the quiet query to end")
    assert len(provider.prompts) == 1
    assert session.texts() == ["done!"]


async def test_ask_user_question_blocks_until_the_answer_arrives(session: Session) -> None:
    provider = ScriptedProvider(replies=[Reply(
        tools=[ToolCall("ask_user_question", {"title": "Dinner", "question": "Pizza or pasta?",
                                              "options": ["Pizza", {"label": "Pasta", "value": "pasta"}]})],
        text=lambda results: f'<message to="family">{results[0]}</message>',
    )])
    await session.chat("choose for me", thread="th-5")
    async with session.running(provider):
        card = (await until(session.outbound, "the question card"))[0]
        content = card["content"]
        assert content["type"] == "ask_question"
        assert [o["label"] for o in content["options"]] == ["Pizza", "Pasta"]
        assert len(content["question_id"].encode()) <= 16  # room for Telegram's 64-byte callback data
        assert card["thread_id"] == "th-5"
        state = await until(lambda: session.container_state().get("current_tool") and session.container_state(),
                            "the running tool to be recorded")
        assert state["current_tool"] == "ask_user_question"
        answer_id, _ = await session.answer(content["question_id"], content["options"][1]["value"])
        await until(lambda: len(session.outbound()) == 2, "the answer to be used")
    assert session.texts()[-1] == "The user chose: Pasta (value: pasta)"
    assert session.acks()[answer_id] == "completed"
    assert session.container_state()["current_tool"] is None


async def test_ask_user_question_times_out_with_an_error_for_the_model(session: Session) -> None:
    provider = ScriptedProvider(replies=[Reply(
        tools=[ToolCall("ask_user_question", {"title": "Q", "question": "Yes?", "options": ["Yes", "No"],
                                              "timeout": 0.2})],
        text=lambda results: f'<message to="family">{results[0]}</message>',
    )])
    await session.chat("ask me")
    async with session.running(provider):
        await until(lambda: len(session.outbound()) == 2, "the reply after the timeout")
    assert session.texts()[-1].startswith("ToolError: nobody answered")


async def test_usage_events_leave_no_rows_since_the_gateway_meters_every_call(session: Session) -> None:
    provider = ScriptedProvider()  # reports usage with every reply
    await session.chat("hi")
    async with session.running(provider):
        await until(session.texts, "the reply")
    assert session.texts() == ["echo: hi"]
    assert "usage_out" not in session.tables()


async def test_stop_during_a_turn_exits_promptly_and_releases_the_claim(session: Session) -> None:
    provider = ScriptedProvider(replies=[Reply(text="never", gate=asyncio.Event())])
    row_id, _ = await session.chat("a long job")
    async with session.running(provider):
        await until(lambda: session.acks().get(row_id) == "processing", "the claim")
    assert provider.queries[0].aborted
    assert session.acks() == {}  # the next runner takes the row at once
    assert session.outbound() == []


async def test_a_restarted_runner_takes_rows_a_crashed_one_had_claimed(session: Session) -> None:
    row_id, _ = await session.chat("hello")
    conn = sqlite3.connect(session.folder / "outbound.db")
    conn.execute("INSERT INTO processing_ack VALUES (?, 'processing', '2020-01-01T00:00:00.000Z')", (row_id,))
    conn.commit()
    conn.close()
    provider = ScriptedProvider()
    async with session.running(provider):
        await until(session.outbound, "a reply")
    assert session.acks() == {row_id: "completed"}


async def test_a_quiet_query_is_ended_and_the_next_message_resumes_it(session: Session) -> None:
    provider = ScriptedProvider()
    await session.chat("one")
    async with session.running(provider, quiet_seconds=0.2):
        await until(lambda: provider.queries and provider.queries[0].finished, "the quiet query to end")
        await session.chat("two")
        await until(lambda: len(session.outbound()) == 2, "the second reply")
    assert provider.continuations == [None, "conv-1"]


async def test_new_rows_wake_the_runner_without_polling(session: Session) -> None:
    provider = ScriptedProvider()
    async with session.running(provider, poll_seconds=3600) as loop:
        async with asyncio.timeout(10):
            await loop.watch_ready.wait()
        await session.chat("are you awake?")
        await until(session.outbound, "a reply woken by the file event")


async def test_a_task_falling_due_wakes_an_idle_runner_without_the_fallback_poll(session: Session) -> None:
    """No host write marks the moment a task falls due: the runner must sleep until it, not until the next poll."""
    provider = ScriptedProvider()
    task_id, _ = await session.task("water the plants", process_after=later_iso(0.5))
    async with session.running(provider, poll_seconds=3600) as loop:
        await until(lambda: loop.polls, "the first read")
        await until(lambda: session.acks().get(task_id) == "completed", "the task run at its time")
    assert "water the plants" in provider.prompts[0]


async def test_a_task_falling_due_during_a_conversation_is_pushed_into_it(session: Session) -> None:
    provider = ScriptedProvider()
    await session.chat("hello")
    task_id, _ = await session.task("stretch", process_after=later_iso(0.5))
    async with session.running(provider, poll_seconds=3600):
        await until(lambda: session.acks().get(task_id) == "completed", "the task answered in the running query")
    assert len(provider.queries) == 1
    assert "stretch" in provider.prompts[-1]


async def test_a_native_slash_command_starts_a_fresh_query_with_the_raw_text(session: Session) -> None:
    provider = ScriptedProvider(replies=['<message to="family">one</message>', "Compacted: 1,234 tokens."],
                                native_slash_commands=True)
    await session.chat("hello")
    async with session.running(provider):
        await until(lambda: provider.prompts, "the first prompt")
        command_id, _ = await session.chat("/compact")
        await until(lambda: "Compacted: 1,234 tokens." in session.texts(), "the command's output")
    assert provider.prompts[-1] == "/compact"
    assert len(provider.queries) == 2
    out = next(r for r in session.outbound() if r["content"]["text"].startswith("Compacted"))
    assert out["in_reply_to"] == command_id


async def test_a_slash_command_is_ordinary_text_for_a_provider_without_native_commands(session: Session) -> None:
    provider = ScriptedProvider()
    await session.chat("/weather berlin")
    async with session.running(provider):
        await until(session.outbound, "a reply")
    assert "/weather berlin" in provider.prompts[0]
    assert provider.prompts[0].startswith("<context")


async def test_a_task_whose_script_says_no_never_wakes_the_agent(session: Session) -> None:
    provider = ScriptedProvider()
    quiet_id, _ = await session.task("tell me if the site is down", script='echo \'{"wakeAgent": false}\'')
    loud_id, _ = await session.task("summarise", script='echo \'{"wakeAgent": true, "data": {"errors": 3}}\'')
    async with session.running(provider):
        await until(lambda: len(session.acks()) == 2 and "processing" not in session.acks().values(), "both done")
    (prompt,) = provider.prompts
    assert "summarise" in prompt
    assert "site is down" not in prompt
    assert "&quot;errors&quot;: 3" in prompt
    assert session.acks() == {quiet_id: "completed", loud_id: "completed"}


async def test_a_failing_script_wakes_the_agent_with_the_error(session: Session) -> None:
    provider = ScriptedProvider()
    await session.task("check the backups", script="echo oops >&2; exit 3")
    async with session.running(provider):
        await until(lambda: provider.prompts, "the prompt")
    assert "script_error" in provider.prompts[0]
    assert "exit code 3" in provider.prompts[0]


async def test_an_error_for_a_host_note_is_never_sent_back_to_the_agent_itself(session: Session) -> None:
    provider = ScriptedProvider(replies=[Reply(error="boom")])
    note_id, _ = await session.system_note("your package request was approved")
    async with session.running(provider):
        await until(lambda: session.acks().get(note_id) == "failed", "the failed ack")
    (error,) = session.outbound()
    assert (error["channel_type"], error["platform_id"]) == ("test", "chat-1")  # the session's own chat


async def test_stop_cuts_a_long_pre_task_script_short(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("agent_runner.loop.STOP_GRACE_SECONDS", 0.1)
    provider = ScriptedProvider()
    row_id, _ = await session.task("check", script="sleep 30; echo '{\"wakeAgent\": true}'")
    async with session.running(provider):
        await until(lambda: session.acks().get(row_id) == "processing", "the claim")
    assert provider.prompts == []
    assert session.acks() == {}


def test_which_rows_are_commands() -> None:
    from agent_runner.commands import command_of
    from agent_runner.protocol import ChatContent, InboundRow

    def row(text: str, trigger: int = 1, kind: str = "chat") -> InboundRow:
        return InboundRow(id="m", seq=2, kind=kind, timestamp="2026-01-01T00:00:00Z", trigger=trigger,
                          content=ChatContent(text=text).to_json() if kind == "chat" else '{"prompt": "/clear"}')

    assert command_of(row(" /clear "), native=False) == "clear"
    assert command_of(row("/clear@nano_bot"), native=False) == "clear"
    assert command_of(row("/clear everything"), native=False) is None
    assert command_of(row("/clear everything"), native=True) == "native"
    assert command_of(row("/compact"), native=True) == "native"
    assert command_of(row("/compact"), native=False) is None
    assert command_of(row("/clear", trigger=0), native=True) is None
    assert command_of(row("/"), native=True) is None
    assert command_of(row("hello /clear"), native=True) is None
    assert command_of(row("", kind="task"), native=True) is None
