"""A waker that records wakes instead of starting containers (for unit tests of the core)."""

from __future__ import annotations

from dataclasses import dataclass, field

from nanoclaw_app.db.rows import Session


@dataclass
class RecordingWaker:
    """Implements the core's ``Waker`` protocol; ``running`` is what ``is_running`` reports."""

    woken: list[str] = field(default_factory=list)
    stopped: list[tuple[str, str]] = field(default_factory=list)
    running: set[str] = field(default_factory=set)
    fail: bool = False

    async def wake(self, session: Session) -> bool:
        self.woken.append(session.id)
        return not self.fail

    async def is_running(self, session_id: str) -> bool:
        return session_id in self.running

    async def stop(self, session_id: str, *, reason: str) -> None:
        self.stopped.append((session_id, reason))
        self.running.discard(session_id)
