"""The runtime used when no container engine is configured: every start fails with a fix-it message.

Messages stay pending (nothing is lost) and the sweep retries them once a real runtime is available.
"""

from __future__ import annotations

from nanoclaw_app.errors import TransientError
from nanoclaw_app.runtime.base import ExitCallback, SessionSpec


class UnavailableRuntime:
    """Refuses to start containers, saying why."""

    name = "unavailable"
    uses_model_keys = False

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def start(self, spec: SessionSpec) -> None:
        """Always refuse."""
        raise TransientError(f"cannot start an agent container: {self.reason}")

    async def stop(self, session_id: str, *, grace_seconds: float = 5.0) -> None:
        """Nothing runs, nothing to stop."""

    async def is_running(self, session_id: str) -> bool:
        """Nothing runs."""
        return False

    async def notify(self, session_id: str) -> None:
        """Nothing to poke."""

    async def remove_orphans(self) -> int:
        """Nothing to remove."""
        return 0

    def on_exit(self, callback: ExitCallback) -> None:
        """Nothing will ever exit."""

    async def open(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """Nothing to release."""
