"""Per-wiring decisions on one message: does the agent engage, and which session scope does it land in.

Engage modes (reference §2.1):

- ``pattern``: a regex searched in the text; ``.`` means always (even an attachment-only message with no text).
- ``mention``: the platform said the bot was mentioned; a DM is always addressed to the bot, so it counts as one.
- ``mention-sticky``: a mention, or a follow-up in a chat (thread) where this agent already has an active session.
  Stickiness is for group chats only; a DM engages anyway through the mention rule.

An invalid regex stored in the DB **fails closed** (the original failed open): a broken pattern must not turn an agent
meant to listen for a keyword into one that answers everything. The router logs it and records an
``invalid_engage_pattern`` drop for that wiring, so the user sees why the agent stays silent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import Wiring

ALWAYS = "."


class InvalidEngagePattern(ValueError):
    """A wiring's stored pattern does not compile (or is missing for ``pattern`` mode)."""


@dataclass(frozen=True, slots=True)
class Engagement:
    """The outcome of the engage test; ``error`` is set when the wiring itself is broken (then never engaged)."""

    engaged: bool
    error: str | None = None


def addressed(msg: InboundMessage) -> bool:
    """A DM or an @mention: the bot was spoken to directly."""
    return msg.is_mention or not msg.is_group


def effective_session_mode(wiring: Wiring, msg: InboundMessage, supports_threads: bool) -> str:
    """The session scope for this message: group chats on threaded adapters split by thread; DMs never do."""
    mode = wiring.session_mode
    if mode == "agent-shared":
        return mode
    if not msg.is_group:
        return "shared"
    if supports_threads:
        return "per-thread"
    return mode


class PatternCache:
    """Compiled engage regexes by source text; bad patterns are remembered too so they are not recompiled."""

    def __init__(self) -> None:
        self._compiled: dict[str, re.Pattern[str] | str] = {}

    def compile(self, pattern: str) -> re.Pattern[str]:
        """The compiled pattern; raises ``InvalidEngagePattern`` with the regex error for a broken one."""
        hit = self._compiled.get(pattern)
        if hit is None:
            try:
                hit = re.compile(pattern)
            except re.error as err:
                hit = f"engage_pattern {pattern!r} is not a valid regex: {err}"
            self._compiled[pattern] = hit
        if isinstance(hit, str):
            raise InvalidEngagePattern(hit)
        return hit

    def matches(self, pattern: str | None, text: str) -> bool:
        """Whether ``text`` engages a ``pattern`` wiring."""
        if not pattern:
            raise InvalidEngagePattern("engage_mode 'pattern' has no engage_pattern")
        if pattern == ALWAYS:
            return True
        return self.compile(pattern).search(text) is not None


async def evaluate(
    db: Database,
    patterns: PatternCache,
    wiring: Wiring,
    msg: InboundMessage,
    messaging_group_id: str,
    session_mode: str,
) -> Engagement:
    """Run the wiring's engage test on one message."""
    mode = wiring.engage_mode
    if mode == "pattern":
        try:
            return Engagement(patterns.matches(wiring.engage_pattern, msg.text))
        except InvalidEngagePattern as err:
            return Engagement(False, str(err))
    if mode == "mention":
        return Engagement(addressed(msg))
    if mode == "mention-sticky":
        if addressed(msg):
            return Engagement(True)
        session = await sessions_db.find(
            db, wiring.agent_group_id, session_mode, messaging_group_id, msg.thread_id
        )
        return Engagement(session is not None)
    return Engagement(False, f"unknown engage_mode {mode!r}")
