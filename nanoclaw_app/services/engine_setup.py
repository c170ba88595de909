"""The container step's fixes on macOS and Windows: install Podman, create its machine, install or update WSL.

Each fix is a button in the wizard. The long ones run as one background task per host (the page may be closed and
opened again meanwhile) and report progress as ``engine.task`` events, the same snapshot that ``task_state`` returns
after a reload. What runs where comes from an :class:`EngineEnvironment`, the computer's facts and the places of its
tools, so the Windows and macOS paths can run anywhere with the facts of those systems.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from nanoclaw_app.engine import download, facts, installer, machine, preflight, proc, windows, wsl
from nanoclaw_app.engine.problem import SetupFailed
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.services.model_check import StepFailed

log = logging.getLogger(__name__)

TASK_ACTIONS = ("install_podman", "init_machine", "install_wsl", "update_wsl")
"""Fixes that take a while and report progress."""
QUICK_ACTIONS = ("restart_windows", "open_windows_update", "open_software_update")
"""Fixes that only start something of the operating system's."""
RESTART_DELAY = 30
"""Seconds Windows waits before restarting, time for the user to save their work (it shows a notice)."""
MACHINE_PLATFORMS = ("win32", "darwin")
_Progress = Callable[..., None]
"""``progress(phase=..., fraction=..., ...)``: update the task's snapshot and tell the page."""


@dataclass(frozen=True)
class EngineEnvironment:
    """Where the setup runs: the computer's facts and where its tools are."""

    platform: str
    facts: facts.HostFacts
    system_root: Path
    """The Windows folder (``%SystemRoot%``); Windows' own tools are run from there."""
    downloads: Path
    podman_exe: str | None = None
    """A fixed place for ``podman``; None looks on PATH and where the installers put it."""
    release_api: str = download.RELEASES_API
    macos_podman: Path = installer.MACOS_PODMAN
    opener: str = "open"
    """macOS's ``open``, which shows the package in Installer and opens Software Update."""

    def find_podman(self) -> str | None:
        """The ``podman`` program, or None while it is not installed."""
        if self.podman_exe is not None:
            return self.podman_exe if os.access(self.podman_exe, os.X_OK) else None
        return installer.find_podman(self.platform)


@dataclass
class EngineTask:
    """A fix in progress (or the last one) as the page shows it."""

    action: str = ""
    status: str = "idle"
    """``idle``, ``running``, ``done``, ``failed``, ``cancelled`` (the user closed the installer) or ``restart``."""
    phase: str = ""
    """``release``, ``download``, ``installer``, ``wsl``, or ``machine_<phase>`` while the machine is created."""
    fraction: float | None = None
    done_bytes: int = 0
    total_bytes: int | None = None
    line: str = ""
    problem: str = ""
    fix: str = ""


@dataclass
class _Job:
    task_state: EngineTask = field(default_factory=EngineTask)
    task: asyncio.Task[None] | None = None
    published: tuple[str, str, int, str] = ("", "", -1, "")


_jobs: weakref.WeakKeyDictionary[AppServices, _Job] = weakref.WeakKeyDictionary()
_environments: weakref.WeakKeyDictionary[AppServices, EngineEnvironment] = weakref.WeakKeyDictionary()


def environment(services: AppServices) -> EngineEnvironment:
    """This host's environment: the real computer unless one was set with :func:`use_environment`."""
    env = _environments.get(services)
    if env is None:
        env = _environments[services] = EngineEnvironment(
            platform=sys.platform, facts=facts.current(),
            system_root=Path(os.environ.get("SYSTEMROOT") or "C:\\Windows"),
            downloads=services.settings.paths.home / "downloads",
        )
    return env


def use_environment(services: AppServices, env: EngineEnvironment) -> None:
    """Run this host's setup in ``env`` (another computer's facts and tools)."""
    _environments[services] = env


def _job(services: AppServices) -> _Job:
    job = _jobs.get(services)
    if job is None:
        job = _jobs[services] = _Job()
    return job


def task_state(services: AppServices) -> EngineTask:
    """The running or last fix of this host."""
    return replace(_job(services).task_state)


def running(services: AppServices) -> bool:
    """Whether a fix is under way."""
    task = _job(services).task
    return task is not None and not task.done()


# ---------------------------------------------------------------------------------------------------- checks


async def preflight_for(services: AppServices, action: str) -> list[preflight.Finding]:
    """The checks to show before installing Podman or creating its machine (none elsewhere)."""
    env = environment(services)
    if action not in ("install_podman", "init_machine"):
        return []
    if env.platform == "win32":
        return await preflight.windows_checks(env.facts, env.system_root)
    if env.platform == "darwin" and action == "install_podman":
        return preflight.macos_checks(env.facts)
    return []


# ---------------------------------------------------------------------------------------------------- fixes


async def start(services: AppServices, action: str) -> EngineTask:
    """Start a fix; a long one runs in the background (or the one already running is reported)."""
    env = environment(services)
    if action not in TASK_ACTIONS + QUICK_ACTIONS:
        raise StepFailed(f"“{action}” is not something the setup can do")
    if env.platform not in MACHINE_PLATFORMS:
        raise StepFailed("NanoClaw installs Podman for you on macOS and Windows only; on Linux install the "
                         "podman package with your distribution's package manager")
    if action in ("install_wsl", "update_wsl", "restart_windows", "open_windows_update") and env.platform != "win32":
        raise StepFailed("That is a Windows fix, and this is not Windows")
    if action == "open_software_update" and env.platform != "darwin":
        raise StepFailed("That is a macOS fix, and this is not macOS")
    job = _job(services)
    if job.task is not None and not job.task.done():
        return replace(job.task_state)
    if action in QUICK_ACTIONS:
        return await _quick(env, action)
    job.task_state = EngineTask(action=action, status="running")
    job.published = ("", "", -1, "")
    job.task = asyncio.create_task(_run(services, env, job, action), name=f"engine-{action}")
    log.info("setup: %s started", action)
    _publish(services, job, force=True)
    return replace(job.task_state)


async def stop(services: AppServices) -> None:
    """Cancel a fix in progress and wait for it (the host's shutdown); an open installer window is left alone."""
    job = _jobs.get(services)
    task = job.task if job is not None else None
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _run(services: AppServices, env: EngineEnvironment, job: _Job, action: str) -> None:
    state = job.task_state

    def progress(**changes: object) -> None:
        for key, value in changes.items():
            setattr(state, key, value)
        _publish(services, job)

    work = asyncio.ensure_future(_ACTIONS[action](env, progress))
    closing = asyncio.ensure_future(services.closing.wait())
    try:
        await asyncio.wait({work, closing}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():  # the host is stopping
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            state.status, state.problem = "failed", "NanoClaw stopped before this finished"
            return
        outcome = work.result()
        state.status = outcome
        state.fraction = 1.0 if outcome == "done" else state.fraction
    except SetupFailed as err:
        state.status, state.problem, state.fix = "failed", err.problem, err.fix
    except asyncio.CancelledError:
        work.cancel()
        state.status, state.problem = "failed", "this was cancelled"
        raise
    except Exception as err:
        log.exception("setup: %s failed", action)
        state.status, state.problem = "failed", f"{type(err).__name__}: {err}"
        state.fix = "NanoClaw hit an unexpected problem; the log (Activity, or nanoclaw.log) has the details"
    finally:
        closing.cancel()
        log.info("setup: %s ended: %s %s", action, state.status, state.problem)
        _publish(services, job, force=True)


def _publish(services: AppServices, job: _Job, *, force: bool = False) -> None:
    """Send the snapshot when something visible changed (a whole percent, the phase or the line)."""
    state = job.task_state
    key = (state.status, state.phase, -1 if state.fraction is None else int(state.fraction * 100), state.line)
    if not force and key == job.published:
        return
    job.published = key
    services.ctx.events.publish("engine.task", **asdict(state))


async def _install_podman(env: EngineEnvironment, progress: _Progress) -> str:
    """Download Podman's installer, run it, and create the machine when there is none yet."""
    progress(phase="release", fraction=None, line="")
    async with download.client() as http:
        asset = await download.find_installer(http, env.platform, env.facts.arch, api_url=env.release_api)
        progress(phase="download", fraction=0.0, total_bytes=asset.size, line=f"Podman {asset.version}")

        def got(done: int, total: int | None) -> None:
            progress(done_bytes=done, total_bytes=total, fraction=(done / total) if total else None)

        path = await download.download(http, asset, env.downloads, got)
    _make_runnable(path)
    progress(phase="installer", fraction=None, line=asset.name)
    if env.platform == "win32":
        outcome = await installer.run_windows(path)
    else:
        outcome = await installer.run_macos(path, opener=env.opener, podman=env.macos_podman)
    if outcome.status == "cancelled":
        return "cancelled"
    if outcome.status == "failed":
        raise SetupFailed(outcome.problem, outcome.fix)
    _remove(path)  # installed: the installer is not needed any more (about 30 MB)
    exe = env.find_podman()
    if exe is None:
        raise SetupFailed("the installer finished, but Podman is not where it installs itself",
                          "restart the computer and open NanoClaw again, or install Podman from https://podman.io")
    log.info("setup: Podman installed at %s", exe)
    if outcome.reboot_needed:
        return "restart"
    if not await machine.exists(exe):
        await _create_machine(exe, progress)
    return "done"


async def _init_machine(env: EngineEnvironment, progress: _Progress) -> str:
    exe = env.find_podman()
    if exe is None:
        raise SetupFailed("Podman is not installed", "click “Install Podman” first")
    await _create_machine(exe, progress)
    return "done"


async def _create_machine(exe: str, progress: _Progress) -> None:
    def step(item: machine.Progress) -> None:
        progress(phase=f"machine_{item.phase}", fraction=item.fraction, line=item.line)

    progress(phase="machine_lookup", fraction=None, line="", done_bytes=0, total_bytes=None)
    await machine.init(exe, step)


async def _install_wsl(env: EngineEnvironment, progress: _Progress) -> str:
    progress(phase="wsl", fraction=None, line="wsl --install --no-distribution")
    change = await wsl.install(windows.tool(env.system_root, windows.WSL))
    return _wsl_outcome(change, "installed")


async def _update_wsl(env: EngineEnvironment, progress: _Progress) -> str:
    progress(phase="wsl", fraction=None, line="wsl --update")
    change = await wsl.update(windows.tool(env.system_root, windows.WSL))
    return _wsl_outcome(change, "updated")


def _wsl_outcome(change: wsl.WslChange, done: str) -> str:
    if change.reboot_needed:
        return "restart"
    if not change.ok:
        raise SetupFailed(f"WSL could not be {done}: {change.message or 'wsl gave no reason'}",
                          "click the button to try again; if Windows says this computer is managed by an "
                          "organisation, ask its administrator to install WSL")
    return "done"


async def _quick(env: EngineEnvironment, action: str) -> EngineTask:
    if action == "restart_windows":
        argv = [str(windows.tool(env.system_root, windows.SHUTDOWN)), "/r", "/t", str(RESTART_DELAY),
                "/c", "NanoClaw: restarting to finish setting up WSL. Save your work."]
    elif action == "open_windows_update":
        argv = [str(windows.tool(env.system_root, windows.EXPLORER)), "ms-settings:windowsupdate"]
    else:
        argv = [env.opener, "x-apple.systempreferences:com.apple.preferences.softwareupdate"]
    try:
        result = await proc.run(argv, limit=30)
    except (OSError, TimeoutError) as err:
        raise StepFailed(f"{argv[0]} could not be started ({err})") from err
    # explorer.exe ends with 1 even when it opened the page.
    if result.code != 0 and action != "open_windows_update":
        raise StepFailed(f"{Path(argv[0]).name} refused: {result.text[-300:] or f'code {result.code}'}")
    log.info("setup: %s done", action)
    return EngineTask(action=action, status="done")


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError as err:  # Windows may still hold the file for a moment; it is only disk space
        log.info("could not delete %s: %s", path, err)


def _make_runnable(path: Path) -> None:
    """The downloaded installer is ours alone; make it runnable where files have modes (tests run it on Linux)."""
    path.chmod(0o700)


_ACTIONS: dict[str, Callable[[EngineEnvironment, _Progress], Awaitable[str]]] = {
    "install_podman": _install_podman, "init_machine": _init_machine, "install_wsl": _install_wsl,
    "update_wsl": _update_wsl,
}
