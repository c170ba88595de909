"""Typing indicators that last the whole turn: Telegram's expires after 5 s and WhatsApp's after about 10 s.

The router shows typing once when a message wakes the agent; this keeps it on by sending it again every ``interval``
seconds while the session still has work (a claim in progress or a due row), one owned task per chat. It stops when a
reply is about to be sent to the chat (delivery says so first, so no indicator outlives the answer), when the turn
ends without one, or after ``max_seconds`` as a backstop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.sweep import session_is_idle
from nanoclaw_app.db.rows import Session

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 4.0
"""Under Telegram's 5 s, so the indicator never blinks off during a turn."""
MAX_SECONDS = 900.0

Key = tuple[str, str, str | None]


class TypingKeeper:
    """Implements the core's ``TypingNotes``."""

    def __init__(self, ctx: CoreContext, *, interval: float = INTERVAL_SECONDS,
                 max_seconds: float = MAX_SECONDS) -> None:
        self._ctx = ctx
        self._interval = interval
        self._max = max_seconds
        self._tasks: dict[Key, asyncio.Task[None]] = {}
        self._closing = False

    def begin(self, session: Session, channel_type: str, platform_id: str, thread_id: str | None) -> None:
        """Keep the chat's indicator on while ``session`` works (a chat already kept on stays as it is)."""
        key = (channel_type, platform_id, thread_id)
        if self._closing or key in self._tasks:
            return
        task = asyncio.create_task(self._keep(session, key), name=f"typing-{channel_type}-{platform_id}")
        self._tasks[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))

    async def replied(self, channel_type: str, platform_id: str, thread_id: str | None) -> None:
        """Stop the chat's indicator before its reply goes out."""
        task = self._tasks.pop((channel_type, platform_id, thread_id), None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def active(self) -> list[Key]:
        """The chats whose indicator is kept on now (tests read it)."""
        return list(self._tasks)

    async def stop(self) -> None:
        """Stop every indicator task and wait for them."""
        self._closing = True
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _forget(self, key: Key, task: asyncio.Task[None]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]

    async def _keep(self, session: Session, key: Key) -> None:
        ctx = self._ctx
        channel_type, platform_id, thread_id = key
        folder = ctx.store.dir(session.agent_group_id, session.id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max
        while loop.time() < deadline:
            await asyncio.sleep(self._interval)
            try:
                if await ctx.store.read(folder, session_is_idle):
                    return  # the turn ended without a reply to this chat
            except Exception as err:
                log.warning("typing in %s chat %s stops: cannot read session %s: %s", channel_type, platform_id,
                            session.id, err)
                return
            adapter = ctx.channels.get(channel_type)
            if adapter is None:
                return
            try:
                await adapter.set_typing(platform_id, thread_id)
            except Exception as err:
                log.warning("typing indicator in %s chat %s failed: %s", channel_type, platform_id, err)


__all__ = ["INTERVAL_SECONDS", "MAX_SECONDS", "TypingKeeper"]
