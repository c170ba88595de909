"""Find the user's Podman REST socket, or start one, and say exactly what to do when neither works.

Agents run in Podman containers, reached through Podman's REST API on a unix socket. Where that socket is differs per
setup (a configured URL, ``CONTAINER_HOST``, the systemd socket of root or of the user, a Podman machine VM on
macOS/Windows), and often none is running at all, so this module tries them in order, pings each for real, and
otherwise starts ``podman system service`` itself and owns that child until ``close()``.

This module never imports podman-py (``podman_api.py`` is the one module that does): finding the engine must work, and
explain itself, even when the engine or the library is broken.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from nanoclaw_app.engine import installer
from nanoclaw_app.engine import machine as machine_cli
from nanoclaw_app.engine.problem import SetupFailed
from nanoclaw_app.engine.relay import Opener, PipeRelay, windows_pipe
from nanoclaw_app.processes import pid_alive
from nanoclaw_app.runtime.podman_endpoint import (
    MachineStarting,
    Ping,
    PodmanEndpoint,
    PodmanUnavailable,
    engine_info,
    install_hint,
    ping,
    rootless_from,
    run_cli,
    standard_socket_path,
)

log = logging.getLogger(__name__)

SERVICE_SOCKET = "podman.sock"
"""Name of the socket of the service we start, inside the host's short ``run`` dir."""
_PID_FILE = "podman-service.pid"
_LOG_FILE = "podman-service.log"
_MAX_SOCKET_PATH = 100
"""Unix socket paths longer than this fail to bind on macOS (104 bytes) and Linux (108 bytes)."""

SERVICE_START_TIMEOUT = 30.0
MACHINE_START_TIMEOUT = 300.0
"""Booting a Podman machine VM can take minutes on a cold laptop."""
STOP_GRACE = 5.0
_MACHINE_PLATFORMS = ("darwin", "win32")


class PodmanService:
    """Finds a Podman endpoint, starting ``podman system service`` when needed, and stops what it started.

    On macOS and Windows a stopped Podman machine is booted in the background (``ensure`` raises
    :class:`MachineStarting` with its progress meanwhile, so the app's start never waits minutes for a VM), unless
    ``wait_for_machine`` asks to wait (the doctor does). A Windows machine that offers only a named pipe is reached
    through a :class:`PipeRelay` this object owns.
    """

    def __init__(self, *, configured_url: str, run_dir: Path, podman_exe: str | None = None,
                 platform: str = sys.platform, wait_for_machine: bool = False,
                 pipe_opener: Callable[[str], Opener] = windows_pipe) -> None:
        self._configured_url = configured_url.strip()
        self._run_dir = run_dir
        self._podman_exe = podman_exe
        self._platform = platform
        self._wait_for_machine = wait_for_machine
        self._pipe_opener = pipe_opener
        self._proc: asyncio.subprocess.Process | None = None
        self._endpoint: PodmanEndpoint | None = None
        self._lock = asyncio.Lock()
        self._boot: asyncio.Task[None] | None = None
        self._boot_progress: machine_cli.Progress | None = None
        self._relay: PipeRelay | None = None

    @property
    def socket_path(self) -> Path:
        """Where a service we start listens."""
        return self._run_dir / SERVICE_SOCKET

    async def ensure(self) -> PodmanEndpoint:
        """Return a live endpoint, finding or starting one; ``PodmanUnavailable`` says what to do when impossible.

        Order: the configured URL (authoritative), ``CONTAINER_HOST`` (authoritative), then on Linux the standard
        socket and finally a service of our own; on macOS/Windows the Podman machine, started when stopped. Calling
        it again re-checks the endpoint and recovers when a service we started has died.
        """
        async with self._lock:
            if self._endpoint is not None:
                if (await ping(self._endpoint.url)).ok:
                    return self._endpoint
                log.warning("Podman at %s stopped answering; looking for it again", self._endpoint.url)
                await self._stop_child()
                self._endpoint = None
            self._endpoint = await self._find()
            return self._endpoint

    async def close(self) -> None:
        """Stop what this object started: the service (SIGTERM, then kill), a machine boot, the pipe relay.

        A no-op otherwise and when called twice. The user's Podman machine itself keeps running.
        """
        async with self._lock:
            await self._stop_child()
            self._endpoint = None
            boot, self._boot = self._boot, None
            if boot is not None and not boot.done():
                boot.cancel()
            if boot is not None:
                with contextlib.suppress(asyncio.CancelledError, PodmanUnavailable):
                    await boot
            relay, self._relay = self._relay, None
            if relay is not None:
                await relay.close()

    async def machine_ready(self) -> None:
        """Wait for the machine boot in progress, if any (raises what made it fail)."""
        boot = self._boot
        if boot is not None:
            await asyncio.shield(boot)

    async def _find(self) -> PodmanEndpoint:
        if self._configured_url:
            return await self._explicit(
                self._configured_url, "the configured podman_url",
                "start Podman there, or clear the podman_url setting so NanoClaw finds or starts Podman itself",
            )
        container_host = os.environ.get("CONTAINER_HOST", "").strip()
        if container_host:
            return await self._explicit(
                container_host, "CONTAINER_HOST",
                "start Podman there, or unset CONTAINER_HOST so NanoClaw finds or starts Podman itself",
            )
        if self._platform in _MACHINE_PLATFORMS:
            return await self._machine()
        standard = standard_socket_path()
        result = await ping(f"unix://{standard}")
        if result.ok:
            rootless = rootless_from(await engine_info(f"unix://{standard}"), os.geteuid() != 0)
            log.info("using the Podman socket %s", standard)
            return PodmanEndpoint(url=f"unix://{standard}", rootless=rootless, started_service=False)
        log.info("standard Podman socket unusable (%s); starting a Podman service", result.error)
        return await self._start_service(standard_problem=result.error)

    async def _explicit(self, url: str, source: str, fix: str) -> PodmanEndpoint:
        """A URL the user chose is used or fails loudly: silently picking another engine would surprise them."""
        result = await ping(url)
        if not result.ok:
            if "permission denied" in result.error:
                fix = "give your user access to that socket (or run rootless Podman and use its socket), or " + fix
            raise PodmanUnavailable(f"Podman at {url} ({source}) does not answer: {result.error}", fix)
        rootless = rootless_from(await engine_info(url), os.geteuid() != 0)
        return PodmanEndpoint(url=url, rootless=rootless, started_service=False)

    def _exe(self) -> str:
        action = "install_podman" if self._platform in _MACHINE_PLATFORMS else ""
        if self._podman_exe is not None:
            found = shutil.which(self._podman_exe)
            if found is None:
                raise PodmanUnavailable(f"Podman is not installed (no executable at {self._podman_exe})",
                                        install_hint(self._platform), action=action)
            return found
        # A Podman installed while the app runs is not on its PATH yet: look where the installers put it too.
        found = installer.find_podman(self._platform)
        if found is None:
            raise PodmanUnavailable("Podman is not installed (no `podman` on PATH); agents run in Podman containers",
                                    install_hint(self._platform), action=action)
        return found

    # --- Linux: a service of our own ------------------------------------------------------------------------------

    async def _start_service(self, *, standard_problem: str) -> PodmanEndpoint:
        exe = self._exe()
        sock = self.socket_path
        if len(str(sock).encode()) > _MAX_SOCKET_PATH:
            raise PodmanUnavailable(f"the socket path {sock} is too long for a unix socket",
                                    "set NANOCLAW_HOME to a shorter folder")
        try:
            self._run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as err:
            raise PodmanUnavailable(f"cannot create {self._run_dir} for the Podman socket: {err}",
                                    "make that folder writable, or set NANOCLAW_HOME to a writable folder") from err
        url = f"unix://{sock}"
        await self._stop_leftover()
        if sock.exists() or sock.is_symlink():
            if (await ping(url)).ok:
                # Someone else's service on our path: use it, but it is not ours to stop.
                log.warning("a Podman service not started by NanoClaw already answers at %s; using it", sock)
                rootless = rootless_from(await engine_info(url), os.geteuid() != 0)
                return PodmanEndpoint(url=url, rootless=rootless, started_service=False)
            sock.unlink()
        log_path = self._run_dir / _LOG_FILE
        try:
            with _open_fresh(log_path) as log_file:
                proc = await asyncio.create_subprocess_exec(
                    exe, "system", "service", "--time=0", url,
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=log_file,
                    # Own session: a Ctrl+C in the terminal must not kill the engine before the host stops containers.
                    start_new_session=True,
                )
        except OSError as err:
            raise PodmanUnavailable(f"cannot run {exe}: {err}", "reinstall Podman; " + install_hint(self._platform)
                                    ) from err
        self._proc = proc
        (self._run_dir / _PID_FILE).write_text(json.dumps({"service": proc.pid, "owner": os.getpid()}),
                                               encoding="utf-8")
        log.info("started `podman system service` (pid %d) at %s", proc.pid, sock)
        try:
            result = await self._wait_until_answering(proc, url)
        except BaseException:
            await self._stop_child()
            raise
        if not result.ok:
            tail = _tail(log_path)
            await self._stop_child()
            problem = f"Podman is installed ({exe}) but its service did not come up: {result.error}"
            if tail:
                problem += f"; its log says: {tail}"
            if standard_problem:
                problem += f" (the standard socket: {standard_problem})"
            raise PodmanUnavailable(problem, "run `podman info` to see what is wrong with Podman, fix it, then retry")
        rootless = rootless_from(await engine_info(url), os.geteuid() != 0)
        return PodmanEndpoint(url=url, rootless=rootless, started_service=True)

    async def _wait_until_answering(self, proc: asyncio.subprocess.Process, url: str) -> Ping:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SERVICE_START_TIMEOUT
        last = Ping(False, error="it did not answer")
        while loop.time() < deadline:
            if self.socket_path.exists():
                last = await ping(url)
                if last.ok:
                    return last
            # Waiting on the process doubles as the poll interval and notices an early exit at once.
            with contextlib.suppress(TimeoutError):
                code = await asyncio.wait_for(proc.wait(), 0.1)
                return Ping(False, error=f"it exited with code {code}")
        return Ping(False, error=f"it did not answer within {SERVICE_START_TIMEOUT:.0f} s ({last.error})")

    async def _stop_child(self) -> None:
        """Stop the service and everything in its process group.

        Rootless Podman that has to make its user namespace afresh (after ``podman system migrate``, a reboot)
        re-runs itself as a child in that namespace: the process we started then exits on SIGTERM and leaves the
        real service running forever (``--time=0``). The group is ours alone (``start_new_session``); Podman's
        pause process, which the user's other Podman commands share, makes a session of its own and is left alone.
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        group = proc.pid
        if proc.returncode is None:
            _signal_group(group, signal.SIGTERM, proc)
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE)
            except TimeoutError:
                log.warning("Podman service (pid %d) ignored SIGTERM; killing it", proc.pid)
                _signal_group(group, signal.SIGKILL, proc)
                await proc.wait()
        if not await _group_gone(group, STOP_GRACE):
            log.warning("a process of the Podman service (group %d) outlived it; killing it", group)
            _signal_group(group, signal.SIGKILL, None)
            await _group_gone(group, STOP_GRACE)
        log.info("stopped the Podman service (pid %d, exit %s)", proc.pid, proc.returncode)
        for name in (SERVICE_SOCKET, _PID_FILE):
            with contextlib.suppress(FileNotFoundError):
                (self._run_dir / name).unlink()

    async def _stop_leftover(self) -> None:
        """Stop a service a crashed host left on our socket (with ``--time=0`` it would run forever).

        The pid file names the service and the host that owns it; a service whose owner still runs (another NanoClaw
        process on this home, e.g. ``nanoclaw serve`` while ``nanoclaw doctor`` checks) is left alone.
        """
        pid_file = self._run_dir / _PID_FILE
        try:
            record = json.loads(pid_file.read_text(encoding="utf-8"))
            pid, owner = int(record["service"]), int(record["owner"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        if pid_alive(owner):
            return
        if not _is_our_service(pid, self.socket_path):
            pid_file.unlink(missing_ok=True)
            return
        log.warning("stopping a Podman service (pid %d) left by an earlier run", pid)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if await _wait_gone(pid, STOP_GRACE):
                break
        pid_file.unlink(missing_ok=True)

    # --- macOS / Windows: the Podman machine ----------------------------------------------------------------------

    async def _machine(self) -> PodmanEndpoint:
        exe = self._exe()
        machine = await self._inspect_machine(exe)
        name = str(machine.get("Name") or machine_cli.DEFAULT_NAME)
        if str(machine.get("State", "")).lower() != "running":
            await self._boot_machine(exe, name, str(machine.get("State", "")).lower())
            machine = await self._inspect_machine(exe)
        elif self._boot is not None and self._boot.done():
            boot, self._boot = self._boot, None
            if not boot.cancelled() and boot.exception() is not None:
                log.info("the Podman machine %s runs now, after an earlier start had failed", name)
        url = await self._machine_url(machine, name)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SERVICE_START_TIMEOUT
        result = await ping(url)
        while not result.ok and loop.time() < deadline:
            await asyncio.sleep(0.2)  # the machine's API forwarder comes up shortly after `machine start` returns
            result = await ping(url)
        if not result.ok:
            raise PodmanUnavailable(f"the Podman machine {name} is running but its API does not answer: "
                                    f"{result.error}", f"run `podman machine stop {name}` and `podman machine start "
                                    f"{name}`, then retry")
        rootful = machine.get("Rootful")
        rootless = rootless_from(await engine_info(url), not rootful if isinstance(rootful, bool) else True)
        return PodmanEndpoint(url=url, rootless=rootless, started_service=False, machine=name)

    async def _boot_machine(self, exe: str, name: str, state: str) -> None:
        """Start booting a stopped machine (once), and wait for it only when asked to; else say it is starting.

        A boot that failed is reported to the next caller once; the call after that tries again.
        """
        boot = self._boot
        if boot is not None and boot.done():
            self._boot = None
            error = None if boot.cancelled() else boot.exception()
            if error is not None:
                raise error
            boot = None  # an earlier boot worked, yet the machine is not running now: start it again
        if boot is None:
            self._boot_progress = None
            log.info("starting the Podman machine %s (it is %s)", name, state or "stopped")
            boot = self._boot = asyncio.create_task(self._run_boot(exe, name, state), name="podman-machine-start")
        if not self._wait_for_machine:
            raise MachineStarting(name, self._boot_progress)
        try:
            await asyncio.shield(boot)
        finally:
            if boot.done():
                self._boot = None

    async def _run_boot(self, exe: str, name: str, state: str) -> None:
        def progress(item: machine_cli.Progress) -> None:
            self._boot_progress = item

        try:
            if state == "starting":
                await self._await_running(exe, name)  # someone else (Podman Desktop, a terminal) is starting it
            else:
                await machine_cli.start(exe, progress, name=name)
        except SetupFailed as err:
            raise PodmanUnavailable(err.problem, err.fix) from err
        log.info("the Podman machine %s is running", name)

    async def _await_running(self, exe: str, name: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MACHINE_START_TIMEOUT
        while loop.time() < deadline:
            if str((await self._inspect_machine(exe)).get("State", "")).lower() == "running":
                return
            await asyncio.sleep(1.0)
        raise PodmanUnavailable(f"the Podman machine {name} did not finish starting within "
                                f"{MACHINE_START_TIMEOUT:.0f} s",
                                f"run `podman machine stop {name}` and `podman machine start {name}`, then retry")

    async def _machine_url(self, machine: dict[str, Any], name: str) -> str:
        """The machine's unix socket, or on Windows a relay of ours to its named pipe."""
        sock = _machine_socket(machine)
        if sock is not None:
            return f"unix://{sock}"
        pipe = _machine_pipe(machine)
        if pipe is None or self._platform != "win32":
            raise PodmanUnavailable(f"the Podman machine {name} offers no API socket or pipe NanoClaw can use",
                                    "update Podman to a current release, or set podman_url to a tcp:// address of "
                                    "the Podman service")
        if self._relay is not None and self._relay.target != pipe:
            await self._relay.close()
            self._relay = None
        if self._relay is None:
            relay = PipeRelay(self._pipe_opener(pipe), target=pipe)
            await relay.start()
            self._relay = relay
        return self._relay.url

    async def _inspect_machine(self, exe: str) -> dict[str, Any]:
        try:
            code, out, err = await run_cli([exe, "machine", "inspect"])
        except OSError as err:
            raise PodmanUnavailable(f"cannot run {exe}: {err}", install_hint(self._platform)) from err
        except TimeoutError:
            raise PodmanUnavailable("`podman machine inspect` did not finish", "check that Podman works: "
                                    "run `podman machine list`") from None
        if code != 0:
            text = (err or out).strip()
            if "does not exist" in text or "no such" in text.lower():
                raise PodmanUnavailable("no Podman machine exists yet (Podman runs containers in a small Linux "
                                        "system here)", "click “Set up Podman” in NanoClaw's setup, or run "
                                        "`podman machine init` and then `podman machine start`",
                                        action="init_machine")
            raise PodmanUnavailable(f"`podman machine inspect` failed: {text[-400:]}",
                                    "run `podman machine list` and `podman machine start` to see what is wrong")
        try:
            data = json.loads(out)
        except json.JSONDecodeError as err:
            raise PodmanUnavailable(f"`podman machine inspect` printed something unexpected ({err})",
                                    "update Podman to a current release") from err
        if isinstance(data, list) and data and isinstance(data[0], dict):
            return data[0]
        raise PodmanUnavailable("no Podman machine exists yet (Podman runs containers in a small Linux system here)",
                                "click “Set up Podman” in NanoClaw's setup, or run `podman machine init` and then "
                                "`podman machine start`", action="init_machine")


def _machine_socket(machine: dict[str, Any]) -> str | None:
    return _connection_path(machine, "PodmanSocket")


def _machine_pipe(machine: dict[str, Any]) -> str | None:
    return _connection_path(machine, "PodmanPipe")


def _connection_path(machine: dict[str, Any], key: str) -> str | None:
    info = machine.get("ConnectionInfo")
    entry = info.get(key) if isinstance(info, dict) else None
    path = entry.get("Path") if isinstance(entry, dict) else None
    return path if isinstance(path, str) and path else None


def _is_our_service(pid: int, sock: Path) -> bool:
    """Whether ``pid`` is alive and is a ``podman system service`` on our socket (never signal a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"service" in cmdline and f"unix://{sock}".encode() in cmdline


def _open_fresh(path: Path) -> BinaryIO:
    """The service's log, emptied so that a failure report quotes this start only."""
    return open(path, "wb")


async def _wait_gone(pid: int, limit: float) -> bool:
    """Wait for a process that is not our child to exit, through a pidfd (Linux), which becomes readable then."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except OSError as err:
        log.warning("cannot watch pid %d (%s); not waiting for it", pid, err)
        return False
    loop = asyncio.get_running_loop()
    gone: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not gone.done():
            gone.set_result(None)

    loop.add_reader(fd, readable)
    try:
        async with asyncio.timeout(limit):
            await gone
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return True


def _tail(path: Path, limit: int = 400) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-limit:]


def _signal_group(group: int, sig: signal.Signals, proc: asyncio.subprocess.Process | None) -> None:
    """Signal the service's process group (where there are groups), else just the process."""
    killpg = getattr(os, "killpg", None)
    try:
        if killpg is not None:
            killpg(group, sig)
        elif proc is not None:
            proc.send_signal(sig)
    except ProcessLookupError:
        pass


async def _group_gone(group: int, seconds: float) -> bool:
    """Wait until no process of ``group`` is left (True at once where there are no process groups)."""
    killpg = getattr(os, "killpg", None)
    if killpg is None:
        return True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        try:
            killpg(group, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # the group id was taken by someone else's processes: not ours any more
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.05)
