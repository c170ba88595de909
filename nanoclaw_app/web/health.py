"""Health endpoint: unauthenticated, tells a supervisor (or the frozen smoke test) the host is up."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.di import NamedDependency

from nanoclaw_app import __version__
from nanoclaw_app.host_state import HostState


class HealthController(Controller):
    """``GET /health``."""

    path = "/health"

    @get("/", sync_to_thread=False)
    def health(self, host_state: NamedDependency[HostState]) -> dict[str, Any]:
        """Report version, uptime and component status."""
        return {
            "status": "ok" if host_state.ready else "starting",
            "version": __version__,
            "uptime_s": round(host_state.uptime(), 3),
            "components": dict(host_state.components),
        }
