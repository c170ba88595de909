"""The container runtime interface the core calls. Podman implements it; tests use an in-process runtime."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class ExtraMount:
    """A host folder the allowlist approved for an agent, bound at ``target`` (under ``/workspace/extra``)."""

    source: Path
    target: str
    read_only: bool


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """What a runtime needs to start one session's container."""

    session_id: str
    agent_group_id: str
    session_dir: Path
    agent_dir: Path
    log_path: Path
    """The container's output: a host-only file (``Paths.container_log``), never inside a mounted folder."""
    provider: str = "claude"
    model: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    mounts: tuple[ExtraMount, ...] = ()
    packages_apt: tuple[str, ...] = ()
    packages_pip: tuple[str, ...] = ()


ExitCallback = Callable[[str, int | None], Awaitable[None]]
"""Called with (session_id, exit code or None) when a container ends for any reason."""


class ContainerRuntime(Protocol):
    """Starts and stops one container per session. Implementations must be safe to call concurrently."""

    name: str

    @property
    def uses_model_keys(self) -> bool:
        """Its agents call models through the gateway with the user's keys: starts wait while those cannot be read."""

    async def start(self, spec: SessionSpec) -> None:
        """Start the session's container; raise ``TransientError`` when it may work later."""

    async def stop(self, session_id: str, *, grace_seconds: float = 5.0) -> None:
        """Stop it (SIGTERM, then kill after the grace period); no-op when not running."""

    async def is_running(self, session_id: str) -> bool:
        """Whether the session's container is alive."""

    async def notify(self, session_id: str) -> None:
        """Host wrote new inbound rows; a runtime without shared-file events may poke the container."""

    async def remove_orphans(self) -> int:
        """Remove containers left by an earlier host run; returns how many."""

    def on_exit(self, callback: ExitCallback) -> None:
        """Register the callback for container exits."""

    async def open(self) -> None:
        """Connect to the engine and remove what an earlier host run left, before any start.

        Raises ``TransientError`` saying what to fix when it is not usable yet. Every start calls it first, so the
        host may open in the background while it comes up.
        """

    async def close(self) -> None:
        """Release the engine connection (running containers are stopped by the wake manager first)."""


STANDBY_MAX_AGE_SECONDS = 24 * 3600.0
"""A session counts as recently active, and its standby container is kept, for a day."""


@runtime_checkable
class StandbyRuntime(Protocol):
    """A runtime that can prepare a session's next container ahead of its next message (Podman can)."""

    async def prepare_standby(self, spec: SessionSpec) -> bool:
        """Make the session's next container ready to start; returns whether one was made."""

    async def discard_standby(self, session_id: str) -> None:
        """Drop the session's prepared container, if any."""
