"""The provider interface the loop drives, and the events providers emit.

A query is a live conversation turn stream: the loop pushes follow-up messages into it while it runs, and reads
events until the provider has answered everything pushed so far (a ``result`` per answered turn).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from agent_runner.tools.base import ToolSpec

EventKind = Literal["init", "activity", "tool_start", "tool_end", "result", "error", "usage", "compacted"]


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """One thing the provider did. Every event counts as liveness (the loop touches the heartbeat)."""

    kind: EventKind
    text: str = ""
    """``result``: the assistant's final text of a turn; ``error``: a message for the user."""
    continuation: str | None = None
    """``init`` (and ``result``): the provider's resumable state, saved at once."""
    tool_name: str | None = None
    tool_timeout_ms: int | None = None
    usage: dict[str, int] = field(default_factory=dict)
    """``usage``: input_tokens, output_tokens, cache_read_tokens, cache_write_tokens — for logs only: the host's gateway
    meters every model call, including ones the runner never sees."""
    model: str | None = None
    gateway_lost: bool = False
    """``error``: the call failed because the gateway socket could not be reached (missing, refusing, or dropped
    before answering) — the host is gone, so the loop keeps the work for the next runner instead of replying."""


class GatewayLost(Exception):
    """The host's model gateway is gone: the runner exits with ``EXIT_GATEWAY_LOST``, leaving its claims in place.

    A failed model call must not become an error reply then: nobody may be there to deliver it, and the message would
    never be answered. The restarted host's sweep gives the claimed rows back (with backoff) and a fresh runner answers.
    """


class Query(Protocol):
    """A running conversation with the model."""

    def push(self, text: str) -> None:
        """Add a user message; it is answered after the current turn."""

    def end(self) -> None:
        """No more input: events finish after the pending turns."""

    def events(self) -> AsyncIterator[ProviderEvent]:
        """Events until ``end()`` was called and every pushed message was answered (or an error)."""

    async def abort(self) -> None:
        """Stop now (e.g. ``/clear`` or shutdown)."""


class Provider(Protocol):
    """Creates queries; one provider object lives for the runner's lifetime and is closed by whoever built it."""

    @property
    def name(self) -> str:
        """The provider's registry name (also the key its continuation is stored under)."""

    supports_native_slash_commands: bool

    def query(
        self, *, prompt: str, continuation: str | None, cwd: Path, system_prompt: str, tools: list[ToolSpec]
    ) -> Query:
        """Start a query with ``prompt`` as the first user message, resuming ``continuation`` when given."""

    def is_session_invalid(self, error: BaseException | str) -> bool:
        """True when the stored continuation cannot be resumed and must be cleared."""

    async def aclose(self) -> None:
        """Release what the provider holds for its lifetime (HTTP clients, the gateway relay); called once at exit."""
