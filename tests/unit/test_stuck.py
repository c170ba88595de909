"""The stuck-container decision matrix (ported from the original's host-sweep tests)."""

from __future__ import annotations

from nanoclaw_app.core.stuck import Claim, StuckAction, StuckDecision, ToolState, decide_stuck_action

NOW = 1_000_000.0
CEILING = 1800.0
CLAIM_STUCK = 60.0


def decide(
    heartbeat_age: float | None, claims: list[Claim] | None = None, tool: ToolState | None = None
) -> StuckDecision:
    return decide_stuck_action(
        now=NOW,
        heartbeat_mtime=None if heartbeat_age is None else NOW - heartbeat_age,
        claims=claims or [],
        tool=tool,
        ceiling_s=CEILING,
        claim_stuck_s=CLAIM_STUCK,
    )


def bash(timeout_s: float) -> ToolState:
    return ToolState(name="Bash", declared_timeout_ms=int(timeout_s * 1000), started_at=NOW - 10)


def test_a_fresh_spawn_without_heartbeat_is_left_alone():
    old_claim = Claim("m1", NOW - 10 * CEILING)
    assert decide(None, [old_claim]).action is StuckAction.OK


def test_a_recent_heartbeat_without_claims_is_ok():
    assert not decide(5.0).kill


def test_heartbeat_older_than_the_ceiling_kills():
    decision = decide(CEILING + 1)
    assert decision.kill
    assert "heartbeat" in decision.reason


def test_heartbeat_just_under_the_ceiling_is_ok():
    assert not decide(CEILING - 1).kill


def test_a_long_declared_bash_timeout_extends_the_ceiling():
    assert not decide(CEILING + 100, tool=bash(CEILING + 600)).kill


def test_the_extended_ceiling_still_kills_once_passed():
    assert decide(CEILING + 700, tool=bash(CEILING + 600)).kill


def test_a_short_declared_timeout_does_not_shorten_the_ceiling():
    assert not decide(CEILING - 1, tool=bash(10)).kill


def test_a_claim_stuck_without_heartbeat_since_kills():
    claimed_at = NOW - CLAIM_STUCK - 5
    decision = decide(NOW - (claimed_at - 1), [Claim("m1", claimed_at)])
    assert decision.kill
    assert "m1" in decision.reason


def test_a_stuck_claim_is_ok_when_the_heartbeat_moved_since():
    claimed_at = NOW - CLAIM_STUCK - 5
    assert not decide(1.0, [Claim("m1", claimed_at)]).kill


def test_a_young_claim_is_ok_even_without_heartbeat_since():
    claimed_at = NOW - CLAIM_STUCK + 5
    assert not decide(CLAIM_STUCK, [Claim("m1", claimed_at)]).kill


def test_a_heartbeat_exactly_at_claim_time_counts_as_not_moved():
    claimed_at = NOW - CLAIM_STUCK - 1
    assert decide(NOW - claimed_at, [Claim("m1", claimed_at)]).kill


def test_a_declared_bash_timeout_extends_the_claim_window():
    claimed_at = NOW - 300
    heartbeat_age = NOW - (claimed_at - 1)
    assert not decide(heartbeat_age, [Claim("m1", claimed_at)], tool=bash(600)).kill
    assert decide(heartbeat_age, [Claim("m1", claimed_at)], tool=bash(200)).kill


def test_any_one_stuck_claim_among_several_kills():
    fresh = Claim("fresh", NOW - 5)
    stuck = Claim("stuck", NOW - CLAIM_STUCK - 30)
    decision = decide(NOW - (stuck.status_changed - 1), [fresh, stuck])
    assert decision.kill
    assert "stuck" in decision.reason


def test_a_tool_without_declared_timeout_changes_nothing():
    assert decide(CEILING + 1, tool=ToolState(name="Read")).kill
