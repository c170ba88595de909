"""The shared dependencies every core component receives, built once by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from nanoclaw_app.channels.base import ChannelRegistry
    from nanoclaw_app.core.events import EventBus
    from nanoclaw_app.core.messages import InboundMessage
    from nanoclaw_app.db.database import Database
    from nanoclaw_app.db.rows import Session
    from nanoclaw_app.sessions.store import SessionStore
    from nanoclaw_app.settings import Settings


class Waker(Protocol):
    """Starts (or pokes) a session's container; implemented by the wake manager."""

    async def wake(self, session: Session) -> bool:
        """Make sure a container runs for the session. Never raises; False leaves work pending for the sweep."""

    async def is_running(self, session_id: str) -> bool:
        """Whether the session's container is alive."""

    async def stop(self, session_id: str, *, reason: str) -> None:
        """Stop the session's container (its unfinished claims are reset by the sweep)."""


RouteFn = Callable[["InboundMessage"], Awaitable[None]]


@dataclass
class CoreContext:
    """Settings, stores, channels and the waker: what routing, approvals, delivery and the sweep share."""

    settings: Settings
    db: Database
    store: SessionStore
    channels: ChannelRegistry
    waker: Waker
    events: EventBus
    route: RouteFn | None = field(default=None)
    """Set by the composition root to the router's entry point, so approvals can replay held messages."""

    async def replay(self, message: InboundMessage) -> None:
        """Route a held message again (after a sender or channel approval)."""
        if self.route is None:
            raise RuntimeError("router is not wired into the core context")
        await self.route(message)
