"""Pre-task scripts: a scheduled task may carry a bash check that decides whether the agent is woken at all.

A recurring "tell me if the site is down" task should cost nothing while the site is up, so the script runs first
(30 s timeout, 1 MB output cap). Its last stdout line must be JSON ``{"wakeAgent": bool, "data": …}``; only ``true``
wakes the agent, which then sees ``data`` as the script's output.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agent_runner.protocol import ContractError, InboundRow, MessageKind, TaskContent

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 30.0
MAX_OUTPUT_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ScriptOutcome:
    """Whether to wake the agent, what to show it, or why the script failed."""

    wake: bool
    data: Any = None
    error: str | None = None


def _verdict(stdout: bytes) -> ScriptOutcome:
    lines = [line for line in stdout.decode("utf-8", errors="replace").splitlines() if line.strip()]
    if not lines:
        return ScriptOutcome(wake=False, error="the script printed nothing")
    try:
        verdict = json.loads(lines[-1])
    except ValueError:
        return ScriptOutcome(wake=False, error=f"its last line is not JSON: {lines[-1][:200]!r}")
    if not isinstance(verdict, dict):
        return ScriptOutcome(wake=False, error="its last line is not a JSON object")
    wake = verdict.get("wakeAgent", verdict.get("wake_agent"))
    if not isinstance(wake, bool):
        return ScriptOutcome(wake=False, error="its JSON has no boolean wakeAgent")
    return ScriptOutcome(wake=wake, data=verdict.get("data"))


async def _drain(stream: asyncio.StreamReader, cap: int) -> bytes:
    """Read to EOF (so the script never blocks on a full pipe), keeping at most ``cap + 1`` bytes."""
    kept = bytearray()
    while chunk := await stream.read(65536):
        if len(kept) <= cap:
            kept += chunk[: cap + 1 - len(kept)]
    return bytes(kept)


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """Kill the script and everything it started (a background child would otherwise hold the pipes open)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def run_task_script(script: str, cwd: Path, *, limit_seconds: float = TIMEOUT_SECONDS) -> ScriptOutcome:
    """Run ``script`` with bash in ``cwd``; the outcome says whether to wake the agent, or why the script failed."""
    workdir = cwd if await asyncio.to_thread(cwd.is_dir) else None
    try:
        proc = await asyncio.create_subprocess_exec(
            "bash", "-c", script, cwd=workdir, start_new_session=True,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
    except OSError as err:
        return ScriptOutcome(wake=False, error=f"could not start bash: {err}")
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(limit_seconds):
            stdout, stderr = await asyncio.gather(_drain(proc.stdout, MAX_OUTPUT_BYTES), _drain(proc.stderr, 4096))
            await proc.wait()
    except TimeoutError:
        return ScriptOutcome(wake=False, error=f"timed out after {limit_seconds:g} s")
    finally:
        # Timed out, cancelled (the runner is stopping) or finished leaving children behind: end them all.
        _kill_group(proc)
        if proc.returncode is None:
            await proc.wait()
    if len(stdout) > MAX_OUTPUT_BYTES:
        return ScriptOutcome(wake=False, error=f"its output exceeds {MAX_OUTPUT_BYTES} bytes")
    if proc.returncode != 0:
        detail = stderr.decode("utf-8", errors="replace").strip()[-300:]
        return ScriptOutcome(wake=False, error=f"exit code {proc.returncode}" + (f": {detail}" if detail else ""))
    return _verdict(stdout)



async def with_script_output(row: InboundRow, cwd: Path) -> InboundRow | None:
    """A task row with its pre-check script's output added, or None when the script says there is nothing to do.

    Rows that are not tasks, or tasks without a script (or unreadable, which the formatter shows), pass unchanged.
    A script that fails wakes the agent with the error: a check that silently never runs is worse.
    """
    if row.kind != MessageKind.TASK:
        return row
    try:
        content = TaskContent.from_dict(json.loads(row.content))
    except (ValueError, ContractError):
        return row
    if not content.script:
        return row
    outcome = await run_task_script(content.script, cwd)
    if outcome.error is not None:
        log.warning("task %s: its script failed (%s); the agent is told", row.id, outcome.error)
        output: Any = {"script_error": outcome.error}
    elif not outcome.wake:
        log.info("task %s: its script says there is nothing to do", row.id)
        return None
    else:
        output = outcome.data
    updated = TaskContent(prompt=content.prompt, script=content.script, script_output=output)
    return replace(row, content=updated.to_json())


__all__ = ["ScriptOutcome", "run_task_script", "with_script_output"]
