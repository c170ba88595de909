"""Pre-task scripts decide whether a scheduled task wakes the agent (reference §2.4 step 5)."""

from __future__ import annotations

from pathlib import Path

from agent_runner.task_script import run_task_script


async def test_a_script_can_wake_the_agent_with_data(tmp_path: Path) -> None:
    outcome = await run_task_script('echo noise; echo \'{"wakeAgent": true, "data": {"n": 2}}\'', tmp_path)
    assert (outcome.wake, outcome.data, outcome.error) == (True, {"n": 2}, None)


async def test_a_script_can_decline(tmp_path: Path) -> None:
    outcome = await run_task_script('echo \'{"wakeAgent": false}\'', tmp_path)
    assert (outcome.wake, outcome.error) == (False, None)


async def test_a_script_runs_in_the_agent_folder(tmp_path: Path) -> None:
    (tmp_path / "flag").write_text("x")
    outcome = await run_task_script('test -f flag && echo \'{"wakeAgent": true}\'', tmp_path)
    assert outcome.wake


async def test_failures_say_why(tmp_path: Path) -> None:
    assert (await run_task_script("echo nope >&2; exit 4", tmp_path)).error == "exit code 4: nope"
    assert "not JSON" in str((await run_task_script("echo hello", tmp_path)).error)
    assert "no boolean wakeAgent" in str((await run_task_script('echo \'{"wake": 1}\'', tmp_path)).error)
    assert (await run_task_script("true", tmp_path)).error == "the script printed nothing"


async def test_a_hanging_script_and_its_children_are_killed(tmp_path: Path) -> None:
    outcome = await run_task_script("sleep 30 & sleep 30", tmp_path, limit_seconds=0.2)
    assert (outcome.wake, outcome.error) == (False, "timed out after 0.2 s")
