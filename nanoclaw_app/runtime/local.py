"""Runs ``python -m agent_runner`` as a local subprocess per session: for development, tests and benchmarks.

It gives no sandbox — Podman does that — so the app never picks it for users. The runner code is the same one a
container runs; only its paths come from arguments instead of the container's ``/workspace`` defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from nanoclaw_app.errors import ConfigError, TransientError
from nanoclaw_app.paths import resource, resource_root
from nanoclaw_app.runtime.base import ExitCallback, SessionSpec

if TYPE_CHECKING:
    from nanoclaw_app.gateway.server import ModelGateway

log = logging.getLogger(__name__)

PID_SUFFIX = ".pid"
"""``<pid_dir>/<session id>.pid``: beside the session's log, in a host-only folder (never inside the session folder)."""


class LocalRuntime:
    """One runner subprocess per session, its output appended to the session's host-only log file."""

    name = "local"

    def __init__(
        self,
        *,
        pid_dir: Path | None = None,
        python: str | None = None,
        env: dict[str, str] | None = None,
        gateway: ModelGateway | None = None,
    ) -> None:
        if getattr(sys, "frozen", False) and python is None:
            raise ConfigError("the local runtime needs a Python interpreter; the frozen app uses Podman")
        self._python = python or sys.executable
        self._pid_dir = pid_dir
        self._env = dict(env or {})
        self._gateway = gateway
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._waiters: dict[str, asyncio.Task[None]] = {}
        self._callbacks: list[ExitCallback] = []
        self._stopping: set[str] = set()
        self._open_lock = asyncio.Lock()
        self._opened = False

    @property
    def uses_model_keys(self) -> bool:
        """Through the gateway, yes; a development runner pointed straight at a model (tests) has no key to wait for."""
        return self._gateway is not None

    def on_exit(self, callback: ExitCallback) -> None:
        """Register an exit callback."""
        self._callbacks.append(callback)

    async def start(self, spec: SessionSpec) -> None:
        """Spawn the runner for a session (no-op when it already runs)."""
        if spec.session_id in self._procs:
            return
        await self.open()
        env = {
            **os.environ,
            **self._env,
            **spec.env,
            "PYTHONPATH": str(resource_root()),
            "NANOCLAW_PROVIDER": spec.provider,
        }
        if spec.model:
            env["NANOCLAW_MODEL"] = spec.model
        if self._gateway is not None:  # a listener of its own, as a container gets
            access = await self._gateway.attach(spec.session_id, spec.agent_group_id, spec.provider)
            env.update(self._gateway.runner_env(access, spec.provider, socket_in_runner=None, host_alias=None))
        log_path = spec.log_path
        log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        args = [
            self._python, "-P", "-s", "-m", "agent_runner",
            "--session-dir", str(spec.session_dir),
            "--agent-dir", str(spec.agent_dir),
            "--skills-dir", str(resource("skills")),
        ]
        with log_path.open("ab") as log_file:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *args, stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=env,
                    cwd=str(spec.agent_dir), start_new_session=True,
                )
            except OSError as err:
                if self._gateway is not None:
                    self._gateway.revoke(spec.session_id)
                raise TransientError(f"cannot start the agent runner: {err}") from err
        if self._pid_dir is not None:
            self._pid_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            (self._pid_dir / f"{spec.session_id}{PID_SUFFIX}").write_text(str(proc.pid))
        self._procs[spec.session_id] = proc
        self._waiters[spec.session_id] = asyncio.create_task(
            self._wait(spec.session_id, log_path, proc), name=f"runner-{spec.session_id}"
        )
        log.info("started runner pid %d for session %s", proc.pid, spec.session_id)

    async def _wait(self, session_id: str, log_path: Path, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        self._procs.pop(session_id, None)
        self._waiters.pop(session_id, None)
        if self._gateway is not None:
            self._gateway.revoke(session_id)
        if self._pid_dir is not None:
            (self._pid_dir / f"{session_id}{PID_SUFFIX}").unlink(missing_ok=True)
        if session_id not in self._stopping and code != 0:
            log.warning("runner of session %s exited with code %s; see %s", session_id, code, log_path)
        self._stopping.discard(session_id)
        for callback in self._callbacks:
            try:
                await callback(session_id, code)
            except Exception:
                log.exception("exit callback for session %s failed", session_id)

    async def stop(self, session_id: str, *, grace_seconds: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after the grace period; returns after the exit was reported."""
        proc = self._procs.get(session_id)
        waiter = self._waiters.get(session_id)
        if proc is None or waiter is None:
            return
        self._stopping.add(session_id)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout=grace_seconds)
        except TimeoutError:
            log.warning("runner of session %s ignored SIGTERM for %.0f s; killing it", session_id, grace_seconds)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await waiter

    async def is_running(self, session_id: str) -> bool:
        """Whether the session's runner process is alive."""
        proc = self._procs.get(session_id)
        return proc is not None and proc.returncode is None

    async def notify(self, session_id: str) -> None:
        """Nothing to do: the runner watches ``inbound.db`` itself."""

    async def open(self) -> None:
        """Kill the runners an earlier host left, once; every start waits for it, so none is taken for a leftover."""
        async with self._open_lock:
            if self._opened:
                return
            killed = await self.remove_orphans()
            self._opened = True
        if killed:
            log.info("killed %d runners left by an earlier run", killed)

    async def close(self) -> None:
        """Nothing to release; running runners are stopped by the wake manager."""

    async def remove_orphans(self) -> int:
        """Kill runners left by an earlier host (found by their pid files) whose command line is ours."""
        if self._pid_dir is None:
            return 0
        return await asyncio.to_thread(_kill_orphans, self._pid_dir)


def _kill_orphans(pid_dir: Path) -> int:
    """Kill runner processes recorded in pid files in ``pid_dir`` that are still alive and are ours."""
    killed = 0
    for pid_file in pid_dir.glob(f"*{PID_SUFFIX}"):
        session_id = pid_file.name.removesuffix(PID_SUFFIX)
        try:
            pid = int(pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            pid_file.unlink(missing_ok=True)
            continue
        if b"agent_runner" in cmdline and any(arg.endswith(f"/{session_id}".encode()) for arg in cmdline):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        pid_file.unlink(missing_ok=True)
    return killed
