"""Engage tests and session scopes per wiring."""

from __future__ import annotations

import pytest

from nanoclaw_app.core import engage
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.db import agents, messaging
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.messaging import WiringSpec
from nanoclaw_app.db.rows import Wiring


def wiring(mode: str = "mention", pattern: str | None = None, session_mode: str = "shared") -> Wiring:
    return Wiring(id="mga-1", messaging_group_id="mg-1", agent_group_id="ag-1", engage_mode=mode,
                  engage_pattern=pattern, sender_scope="all", ignored_message_policy="drop",
                  session_mode=session_mode, priority=0, created_at="now")


def msg(text: str = "hi", *, group: bool = True, mention: bool = False, thread: str | None = None) -> InboundMessage:
    return InboundMessage(channel_type="test", platform_id="c", message_id="m", sender_id="u", text=text,
                          is_group=group, is_mention=mention, thread_id=thread)


def test_pattern_cache_compiles_once() -> None:
    cache = engage.PatternCache()
    assert cache.compile(r"\bhi\b") is cache.compile(r"\bhi\b")


def test_invalid_pattern_raises_every_time_with_the_regex_error() -> None:
    cache = engage.PatternCache()
    for _ in range(2):
        with pytest.raises(engage.InvalidEngagePattern, match="not a valid regex"):
            cache.matches("(oops", "text")


def test_dot_means_always_even_for_empty_text() -> None:
    assert engage.PatternCache().matches(".", "") is True


def test_missing_pattern_is_invalid() -> None:
    with pytest.raises(engage.InvalidEngagePattern):
        engage.PatternCache().matches(None, "x")


@pytest.mark.parametrize(
    ("group", "mention", "expected"), [(False, False, True), (True, True, True), (True, False, False)]
)
def test_addressed_means_dm_or_mention(group: bool, mention: bool, expected: bool) -> None:
    assert engage.addressed(msg(group=group, mention=mention)) is expected


@pytest.mark.parametrize(
    ("mode", "group", "threads", "expected"),
    [
        ("shared", True, True, "per-thread"),
        ("shared", True, False, "shared"),
        ("per-thread", True, False, "per-thread"),
        ("agent-shared", True, True, "agent-shared"),
        ("per-thread", False, True, "shared"),
        ("shared", False, True, "shared"),
        ("agent-shared", False, False, "agent-shared"),
    ],
)
def test_effective_session_mode(mode: str, group: bool, threads: bool, expected: str) -> None:
    assert engage.effective_session_mode(wiring(session_mode=mode), msg(group=group), threads) == expected


async def test_invalid_pattern_fails_closed(ctx: CoreContext) -> None:
    result = await engage.evaluate(ctx.db, engage.PatternCache(), wiring("pattern", "[bad"), msg("[bad"), "mg-1",
                                   "shared")
    assert result.engaged is False
    assert result.error is not None


async def test_unknown_mode_fails_closed(ctx: CoreContext) -> None:
    result = await engage.evaluate(ctx.db, engage.PatternCache(), wiring("telepathy"), msg(mention=True), "mg-1",
                                   "shared")
    assert (result.engaged, result.error) == (False, "unknown engage_mode 'telepathy'")


async def test_mention_sticky_needs_an_active_session_of_this_agent(ctx: CoreContext) -> None:
    agent = await agents.create(ctx.db, "Alpha")
    sibling = await agents.create(ctx.db, "Beta")
    chat = await messaging.create(ctx.db, "test", "grp", is_group=True)
    w = await messaging.wire(ctx.db, chat.id, agent.id, WiringSpec("mention-sticky"))
    cache = engage.PatternCache()
    assert not (await engage.evaluate(ctx.db, cache, w, msg(), chat.id, "shared")).engaged
    await sessions_db.find_or_create(ctx.db, sibling.id, "shared", chat.id, None)
    assert not (await engage.evaluate(ctx.db, cache, w, msg(), chat.id, "shared")).engaged
    session, _ = await sessions_db.find_or_create(ctx.db, agent.id, "shared", chat.id, None)
    assert (await engage.evaluate(ctx.db, cache, w, msg(), chat.id, "shared")).engaged
    await sessions_db.close(ctx.db, session.id)
    assert not (await engage.evaluate(ctx.db, cache, w, msg(), chat.id, "shared")).engaged
