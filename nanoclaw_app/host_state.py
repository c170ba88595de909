"""What the services and the web layer may read of the running host: readiness, component status, its run."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field


@dataclass
class HostState:
    """Readiness and per-component status the host updates as it starts."""

    started_at: float = field(default_factory=time.monotonic)
    run: str = field(default_factory=lambda: secrets.token_hex(8))
    """This host's run: a restart in the same process (same pid) is a new run."""
    ready: bool = False
    components: dict[str, str] = field(default_factory=dict)

    def uptime(self) -> float:
        """Seconds since the host object was created."""
        return time.monotonic() - self.started_at
