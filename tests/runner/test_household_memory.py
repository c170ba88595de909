"""Household memory: one agent shared by several people keeps each person's private facts out of the others' prompts.

Real session folders (the host's ``SessionStore``) and the real runner loop, with a scripted provider that records the
system prompt of every query it is asked to start.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_runner.people_memory import PEOPLE_DIR, person_file, person_key
from agent_runner.protocol import ChatContent, Destination, MessageKind, TaskContent
from agent_runner.tools.base import ToolSpec
from nanoclaw_app.ids import new_id
from nanoclaw_app.sessions.store import NewInbound
from nanoclaw_app.timeutil import now_iso
from tests.fakes.provider import Reply, ScriptedProvider, ScriptedQuery
from tests.runner.conftest import AGENT_ID, Session, until

ALICE_SECRET = "Alice is pregnant and has not told Bob yet."
BOB_SECRET = "Bob is saving for a surprise trip to Lisbon."
SHARED = "The family eats dinner at 7 pm."


class Recording(ScriptedProvider):
    """Also records, for every prompt (first or pushed), the system prompt of the query that answers it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answered_under: list[tuple[str, str]] = []

    def query(self, *, prompt: str, continuation: str | None, cwd: Path, system_prompt: str,
              tools: list[ToolSpec]) -> ScriptedQuery:
        query = super().query(prompt=prompt, continuation=continuation, cwd=cwd, system_prompt=system_prompt,
                              tools=tools)
        self.answered_under.append((prompt, system_prompt))
        push = query.push

        def recorded_push(text: str) -> None:
            self.answered_under.append((text, system_prompt))
            push(text)

        query.push = recorded_push  # type: ignore[method-assign]
        return query


def remember(session: Session, user_id: str, text: str) -> Path:
    """What the agent wrote into a person's file in an earlier conversation."""
    path = session.agent_dir / person_file(user_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


async def say(session: Session, text: str, sender: str, *, chat: str, is_group: bool) -> str:
    content = ChatContent(text=text, sender_id=f"test:{sender.lower()}", sender_name=sender, is_group=is_group,
                          platform_message_id=new_id("msg"))
    row_id = f"{content.platform_message_id}:{AGENT_ID}"
    await session.store.write_inbound(session.folder, NewInbound(
        id=row_id, kind=MessageKind.CHAT, content=content.to_json(), timestamp=now_iso(), trigger=1,
        platform_id=chat, channel_type="test",
    ))
    return row_id


def agent_notes(fact: str) -> Callable[[str], str]:
    """The agent's answer: it writes ``fact`` into the memory file the prompt's <people> list names, and replies."""
    def answer(prompt: str) -> str:
        found = re.search(r'memory_file="([^"]+)"', prompt)
        assert found, "the prompt names the sender's memory file"
        path = Path(found.group(1))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(fact, encoding="utf-8")
        return '<message to="family">noted, I will keep it to myself</message>'
    return answer


async def test_a_fact_alice_told_never_reaches_the_prompt_that_answers_bob(session: Session) -> None:
    """Alice's and Bob's DMs are separate conversations with one agent (one agent folder, two session folders)."""
    session.agent_dir.mkdir(parents=True)
    (session.agent_dir / "MEMORY.md").write_text(SHARED, encoding="utf-8")
    bob_folder = await session.store.create(AGENT_ID, "sess-bob")
    bob_dm = Destination(name="bob", display_name="Bob", type="channel", channel_type="test", platform_id="chat-9")
    await session.store.write_projection(bob_folder, [bob_dm], ("test", "chat-9", None))
    bob = Session(session.store, bob_folder, session.agent_dir.parent)

    alice_provider = ScriptedProvider(replies=[agent_notes(ALICE_SECRET)])
    await say(session, "I am pregnant, keep it to yourself", "Alice", chat="chat-1", is_group=False)
    async with session.running(alice_provider):
        await until(session.outbound, "Alice's answer")
    alice_file = session.agent_dir / person_file("test:alice")
    assert alice_file.read_text(encoding="utf-8") == ALICE_SECRET  # the agent wrote where the prompt said

    bob_provider = ScriptedProvider()
    await say(bob, "any news in the family?", "Bob", chat="chat-9", is_group=False)
    await say(session, "what did I tell you?", "Alice", chat="chat-1", is_group=False)
    async with bob.running(bob_provider), session.running(alice_provider):
        await until(bob.outbound, "Bob's answer")
        await until(lambda: len(session.outbound()) == 2, "Alice's second answer")
    (bob_prompt,) = bob_provider.system_prompts
    assert ALICE_SECRET not in bob_prompt
    assert str(alice_file) not in bob_prompt
    assert "Alice" not in bob_prompt + bob_provider.prompts[0]
    assert SHARED in bob_prompt  # the household file is everyone's
    assert ALICE_SECRET in alice_provider.system_prompts[-1]
    assert SHARED in alice_provider.system_prompts[-1]


async def test_in_one_shared_conversation_bobs_message_waits_for_a_prompt_without_alices_memory(
    session: Session
) -> None:
    """Both DMs wired into one conversation: Bob's row is not pushed into the query that holds Alice's memory."""
    remember(session, "test:alice", ALICE_SECRET)
    remember(session, "test:bob", BOB_SECRET)
    gate = asyncio.Event()
    provider = ScriptedProvider(replies=[Reply(text='<message to="family">congratulations</message>', gate=gate),
                                         '<message to="work">sure</message>'])
    await say(session, "I am pregnant, keep it to yourself", "Alice", chat="chat-1", is_group=False)
    async with session.running(provider):
        await until(lambda: provider.prompts, "Alice's query")
        await say(session, "any news in the family?", "Bob", chat="chat-2", is_group=False)
        gate.set()
        await until(lambda: len(provider.queries) == 2, "a query of Bob's own")
        await until(lambda: len(session.outbound()) == 2, "both answers")
    alice_prompt, bob_prompt = provider.system_prompts
    assert "I am pregnant" in provider.prompts[0]
    assert "any news" in provider.prompts[1]
    assert len(provider.prompts) == 2  # Bob's message was never pushed into Alice's query
    assert ALICE_SECRET in alice_prompt
    assert BOB_SECRET not in alice_prompt
    assert ALICE_SECRET not in bob_prompt
    assert BOB_SECRET in bob_prompt


async def test_in_a_family_group_everyone_who_wrote_is_loaded_and_nobody_else(session: Session) -> None:
    remember(session, "test:alice", ALICE_SECRET)
    remember(session, "test:bob", BOB_SECRET)
    remember(session, "test:carol", "Carol hates mushrooms.")
    provider = ScriptedProvider()
    await say(session, "who is cooking tonight?", "Alice", chat="chat-1", is_group=True)
    await say(session, "not me", "Bob", chat="chat-1", is_group=True)
    async with session.running(provider):
        await until(session.outbound, "an answer")
    prompt = provider.system_prompts[0]
    assert ALICE_SECRET in prompt
    assert BOB_SECRET in prompt
    assert "Carol" not in prompt
    assert "In a group chat everyone reads your reply" in prompt


async def test_a_reminder_in_alices_dm_loads_her_memory_and_one_in_the_group_loads_nobodys(session: Session) -> None:
    remember(session, "test:alice", ALICE_SECRET)
    greetings = [await say(session, "hi", "Alice", chat="chat-2", is_group=False),
                 await say(session, "hello all", "Bob", chat="chat-1", is_group=True)]
    provider = Recording()
    async with session.running(provider):
        await until(lambda: all(session.acks().get(g) == "completed" for g in greetings), "the greetings answered")
        for count, chat in enumerate(("chat-2", "chat-1"), start=1):
            await session.write(NewInbound(
                id=new_id("task"), kind=MessageKind.TASK, content=TaskContent(prompt="take the pill").to_json(),
                timestamp=now_iso(), platform_id=chat, channel_type="test",
            ))
            await until(lambda: sum("take the pill" in p for p in provider.prompts) == count,  # noqa: B023
                        "the reminder")
    in_dm, in_group = [system for prompt, system in provider.answered_under if "take the pill" in prompt]
    assert ALICE_SECRET in in_dm
    assert ALICE_SECRET not in in_group
    assert "Nobody in this conversation has private memory yet." in in_group


async def test_the_same_person_writing_again_is_pushed_into_the_running_query(session: Session) -> None:
    remember(session, "test:alice", ALICE_SECRET)
    gate = asyncio.Event()
    provider = ScriptedProvider(replies=[Reply(text='<message to="family">one</message>', gate=gate)])
    await say(session, "first", "Alice", chat="chat-1", is_group=False)
    async with session.running(provider):
        await until(lambda: provider.prompts, "the first prompt")
        await say(session, "second", "Alice", chat="chat-1", is_group=False)
        await until(lambda: len(provider.prompts) == 2, "the follow-up pushed")
        gate.set()
        await until(lambda: len(session.outbound()) == 2, "both answers")
    assert len(provider.queries) == 1


def test_person_keys_are_plain_file_names_and_never_collide() -> None:
    ids = ["telegram:123", "whatsapp:491701234567@s.whatsapp.net", "webchat:owner", "a_b:c", "a:b_c", "a:b:c",
           "slack:U1/../../etc", "x:" + "é" * 300, "x:" + "é" * 301, ".:hidden", "tg:%41", "tg:A"]
    keys = [person_key(i) for i in ids]
    assert len(set(keys)) == len(ids)
    assert person_key("telegram:123") == "telegram_123"
    whatsapp = "whatsapp:491701234567@s.whatsapp.net"
    assert person_file(whatsapp) == f"{PEOPLE_DIR}/whatsapp_491701234567@s.whatsapp.net.md"
    for key in keys:
        assert "/" not in key
        assert "\\" not in key
        assert not key.startswith(".")
        assert len(key.encode()) <= 180


async def test_a_pipe_the_agent_left_as_a_persons_file_does_not_hang_the_prompt(session: Session) -> None:
    (session.agent_dir / PEOPLE_DIR).mkdir(parents=True)
    os.mkfifo(session.agent_dir / person_file("test:alice"))
    provider = ScriptedProvider()
    await say(session, "hello", "Alice", chat="chat-1", is_group=False)
    async with session.running(provider):
        await until(session.outbound, "an answer")
    assert "Nobody in this conversation has private memory yet." in provider.system_prompts[0]
    assert f'memory_file="{session.agent_dir / person_file("test:alice")}"' in provider.prompts[0]
