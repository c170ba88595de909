"""The shared dependencies every core component receives, built once by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from nanoclaw_app.core.adapter_contract import ChannelRegistry
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


class DueNotes(Protocol):
    """Told every time the host writes a future ``process_after``, so the session is woken at that moment."""

    def note(self, session_id: str, when: float | None = None) -> None:
        """Check the session at epoch ``when`` (None: now); a stale or duplicate note costs one DB read."""


class TypingNotes(Protocol):
    """Keeps a chat's typing indicator on while its session works on a turn."""

    def begin(self, session: Session, channel_type: str, platform_id: str, thread_id: str | None) -> None:
        """A message that wakes the agent was handed to ``session``: show typing until the turn ends."""

    async def replied(self, channel_type: str, platform_id: str, thread_id: str | None) -> None:
        """A reply is about to go to the chat: stop its indicator first (it would outlive the answer)."""


class Transcriber(Protocol):
    """Puts the words of a message's voice notes into its text before an agent gets it (the audio stays attached)."""

    async def transcribe(self, msg: InboundMessage, agent_group_id: str) -> InboundMessage:
        """The message with its transcripts (or why there are none) in the text; no audio: ``msg``. Never raises.

        The calls are counted for ``agent_group_id``.
        """


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
    due: DueNotes | None = field(default=None)
    """Set by the composition root to the due timer; without it scheduled rows wait for the sweep."""
    typing: TypingNotes | None = field(default=None)
    """Set by the composition root to the typing keeper; without it typing is shown once per message."""
    transcriber: Transcriber | None = field(default=None)
    """Set by the composition root to the voice-note service; without it audio reaches agents as files only."""

    def note_due(self, session_id: str, when: float | None = None) -> None:
        """Wake ``session_id`` at epoch ``when`` (None: check now) if it then has due work and no container."""
        if self.due is not None:
            self.due.note(session_id, when)

    async def replay(self, message: InboundMessage) -> None:
        """Route a held message again (after a sender or channel approval)."""
        if self.route is None:
            raise RuntimeError("router is not wired into the core context")
        await self.route(message)
