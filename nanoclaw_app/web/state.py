"""What the web layer may read of the running host (a narrow view, injected as a Litestar dependency)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class HostState:
    """Readiness and per-component status the host updates as it starts."""

    started_at: float = field(default_factory=time.monotonic)
    ready: bool = False
    components: dict[str, str] = field(default_factory=dict)

    def uptime(self) -> float:
        """Seconds since the host object was created."""
        return time.monotonic() - self.started_at
