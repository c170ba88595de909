"""When is a running container stuck? A pure decision, so the whole matrix is unit-tested without containers.

Liveness is judged from the heartbeat file the container touches on every agent event, its open claims in
``processing_ack`` and the tool it declared it is running (a long Bash command may legitimately stay silent for its
declared timeout, so that widens both windows).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Claim:
    """A ``processing`` ack: the container took this message; ``status_changed`` in epoch seconds."""

    message_id: str
    status_changed: float


@dataclass(frozen=True, slots=True)
class ToolState:
    """The tool the container says is running (``container_state``); ``started_at`` in epoch seconds."""

    name: str
    declared_timeout_ms: int | None = None
    started_at: float | None = None


class StuckAction(StrEnum):
    """What the sweep should do with a running container."""

    OK = "ok"
    KILL = "kill"


@dataclass(frozen=True, slots=True)
class StuckDecision:
    """The verdict and, for a kill, a reason fit for the log and the activity page."""

    action: StuckAction
    reason: str = ""

    @property
    def kill(self) -> bool:
        """Whether the container must be stopped."""
        return self.action is StuckAction.KILL


OK = StuckDecision(StuckAction.OK)


def _declared_timeout_s(tool: ToolState | None) -> float:
    if tool is None or not tool.declared_timeout_ms or tool.declared_timeout_ms < 0:
        return 0.0
    return tool.declared_timeout_ms / 1000.0


def decide_stuck_action(
    *,
    now: float,
    heartbeat_mtime: float | None,
    claims: list[Claim],
    tool: ToolState | None,
    ceiling_s: float,
    claim_stuck_s: float,
) -> StuckDecision:
    """Decide whether a running container is stuck.

    - No heartbeat file yet: a fresh spawn that has not produced an event; never killed for that.
    - Absolute ceiling: the heartbeat is older than max(ceiling, declared tool timeout).
    - Claim stuck: a claim is older than max(claim_stuck_s, declared tool timeout) and the heartbeat has not moved
      since the claim was made (a container that is still producing events is working, however slowly).
    """
    if heartbeat_mtime is None:
        return OK
    declared = _declared_timeout_s(tool)
    heartbeat_age = now - heartbeat_mtime
    ceiling = max(ceiling_s, declared)
    if heartbeat_age > ceiling:
        return StuckDecision(
            StuckAction.KILL, f"no heartbeat for {heartbeat_age:.0f}s (ceiling {ceiling:.0f}s)"
        )
    tolerance = max(claim_stuck_s, declared)
    for claim in claims:
        claim_age = now - claim.status_changed
        if claim_age > tolerance and heartbeat_mtime <= claim.status_changed:
            return StuckDecision(
                StuckAction.KILL,
                f"message {claim.message_id} claimed {claim_age:.0f}s ago with no heartbeat since"
                f" (limit {tolerance:.0f}s)",
            )
    return OK


__all__ = ["Claim", "StuckAction", "StuckDecision", "ToolState", "decide_stuck_action"]
