"""The container engine step of the setup wizard: is Podman there, and is the agent image built?

The image build runs as a background task owned here (one per host, never two at once), because it takes minutes and
the page may be closed and reopened meanwhile: the page learns its progress from the ``image.build_*`` events the
image builder publishes, and the final outcome from ``setup.image``. A failed build keeps the last lines of its log and
a fix in plain words.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nanoclaw_app.db import app_state
from nanoclaw_app.engine.machine import Progress as MachineProgress
from nanoclaw_app.engine.preflight import Finding, blocker
from nanoclaw_app.errors import NanoClawError
from nanoclaw_app.services import engine_setup
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.services.model_check import StepFailed
from nanoclaw_app.timeutil import now_iso

if TYPE_CHECKING:
    from nanoclaw_app.runtime.image import BuildProgress
    from nanoclaw_app.runtime.podman_runtime import PodmanRuntime

log = logging.getLogger(__name__)

ENGINE_DONE = "wizard.engine"
LOG_LINES = 200
_PULL_FAILED = ("pulling image", "initializing source", "unable to pull", "error pulling", "manifest unknown",
                "name unknown", "requested access to the resource is denied", "resolving image name",
                "short-name", "creating build container")
_NETWORK = ("no such host", "dial tcp", "i/o timeout", "tls handshake timeout", "temporary failure resolving",
            "could not resolve", "network is unreachable", "connection refused", "failed to establish a new "
            "connection", "connection reset")
_TLS = ("x509", "certificate verify failed", "certificate_verify_failed", "ssl: ", "unknown authority")


@dataclass
class EngineReport:
    """What the engine step shows: the engine, whether it works (or why not) and the agent image's state."""

    runtime: str
    ok: bool
    development: bool = False
    """Agents run without containers (runtime ``local`` or a test runtime): nothing to check or build."""
    detail: str = ""
    problem: str = ""
    fix: str = ""
    image_tag: str = ""
    image_ready: bool = False
    base_image: str = ""
    base_present: bool = False
    action: str = ""
    """What the wizard can do about the problem for the user (a button; see ``services/engine_setup.py``)."""
    findings: list[Finding] = field(default_factory=list)
    """The preflight checks before Podman is installed or its machine made (macOS, Windows)."""
    starting: MachineProgress | None = None
    """The Podman machine is booting: where it is (check again shortly)."""
    task: engine_setup.EngineTask | None = None
    """A fix under way, or the last one when it did not succeed."""


@dataclass
class BuildState:
    """The agent image build as the page shows it (also after a reload, mid-build)."""

    status: str = "idle"
    """``idle``, ``running``, ``done`` or ``failed``."""
    tag: str = ""
    step: int = 0
    steps: int = 0
    lines: list[str] = field(default_factory=list)
    """The latest lines of build output."""
    built: bool = False
    """False when the image already existed and nothing had to be built."""
    seconds: float = 0.0
    error: str = ""
    fix: str = ""


class _Job:
    """The one build of one host: its state and its task."""

    def __init__(self) -> None:
        self.state = BuildState()
        self.lines: deque[str] = deque(maxlen=LOG_LINES)
        self.task: asyncio.Task[None] | None = None

    def snapshot(self) -> BuildState:
        s = self.state
        return BuildState(status=s.status, tag=s.tag, step=s.step, steps=s.steps, lines=list(self.lines),
                          built=s.built, seconds=s.seconds, error=s.error, fix=s.fix)


_jobs: weakref.WeakKeyDictionary[AppServices, _Job] = weakref.WeakKeyDictionary()


def _job(services: AppServices) -> _Job:
    job = _jobs.get(services)
    if job is None:
        job = _jobs[services] = _Job()
    return job


def _podman(services: AppServices) -> PodmanRuntime | None:
    from nanoclaw_app.runtime.podman_runtime import PodmanRuntime

    return services.runtime if isinstance(services.runtime, PodmanRuntime) else None


def _set_health(services: AppServices, status: str) -> None:
    services.state.components["containers"] = status
    services.ctx.events.publish("health", components={"containers": status})


# ---------------------------------------------------------------------------------------------------- the check


async def check_engine(services: AppServices) -> EngineReport:
    """Check the engine the host uses (connecting to Podman if it was not reachable at start); never raises for it."""
    runtime = services.runtime
    if runtime is None or not services.live:
        return EngineReport(runtime="none", ok=False, problem="this process runs no agents",
                            fix="open the setup in the NanoClaw app (or run `nanoclaw serve` and open its link)")
    podman = _podman(services)
    if podman is None:
        await app_state.put(services.ctx.db, ENGINE_DONE, now_iso())
        return EngineReport(runtime=runtime.name, ok=True, development=True,
                            detail=f"Agents run with the development runtime “{runtime.name}”, without containers, "
                                   "so there is no container engine to check and no agent image to build.")
    report = EngineReport(runtime="podman", ok=False, base_image=services.settings.agent_base_image)
    from nanoclaw_app.runtime.podman_socket import MachineStarting, PodmanUnavailable

    try:
        if podman.api is None:
            await podman.open()
            _set_health(services, "podman")
            log.info("setup: Podman is reachable now")
        api = podman.api
        if api is None:
            raise StepFailed("Podman did not connect")
        info = await api.info()
        version = str((info.get("version") or {}).get("Version", "")) or "?"
        report.detail = f"Podman {version} ({'rootless' if podman.rootless else 'rootful'}) is running."
        report.image_tag = await podman.images.base_tag()
        report.image_ready = await api.image_id(report.image_tag) is not None
        report.base_present = await api.image_id(report.base_image) is not None
    except PodmanUnavailable as err:
        report.problem, report.fix, report.action = err.problem, err.fix, err.action
        if isinstance(err, MachineStarting):
            report.starting = err.progress or MachineProgress("start", None, "")
        await _explain_setup(services, report)
        return report
    except NanoClawError as err:
        log.warning("setup: the container engine check failed: %s", err)
        report.problem = str(err)
        report.fix = "run `nanoclaw doctor` in a terminal: it checks Podman and says what to change"
        return report
    report.ok = True
    if report.image_ready:
        await app_state.put(services.ctx.db, ENGINE_DONE, now_iso())
    return report


async def _explain_setup(services: AppServices, report: EngineReport) -> None:
    """Before installing Podman or making its machine: the preflight, whose first blocker replaces the problem."""
    last = engine_setup.task_state(services)
    if engine_setup.running(services) or last.status in ("failed", "cancelled", "restart"):
        report.task = last
    if engine_setup.running(services):
        return  # its progress is what matters now; checks run again when it ends
    report.findings = await engine_setup.preflight_for(services, report.action)
    first = blocker(report.findings)
    if first is not None:
        report.problem, report.fix, report.action = first.problem, first.fix, first.action
    elif report.action in _SETUP_WORDS:
        report.problem, report.fix = _SETUP_WORDS[report.action]


_SETUP_WORDS = {
    "install_podman": ("Podman, the program that runs your agents' containers, is not installed on this computer",
                       "click “Install Podman”: NanoClaw downloads Podman's official installer and opens it, your "
                       "computer asks for your permission, and NanoClaw then sets Podman up"),
    "init_machine": ("Podman is installed, but its small Linux system (the Podman machine) is not set up yet",
                     "click “Set up Podman”: it downloads about 1 GB and takes a few minutes"),
}
"""In the wizard, next to the button, these say it better than the engine's own message (which names commands)."""


# ---------------------------------------------------------------------------------------------------- the build


def build_state(services: AppServices) -> BuildState:
    """The current (or last) build of this host."""
    return _job(services).snapshot()


async def start_image_build(services: AppServices) -> BuildState:
    """Start building the agent image in the background (or report the build already running)."""
    podman = _podman(services)
    if podman is None:
        raise StepFailed("There is no agent image to build: agents do not run in Podman here.")
    if podman.api is None:
        raise StepFailed("Podman is not connected. Check the container engine first (the button above).")
    job = _job(services)
    if job.task is not None and not job.task.done():
        return job.snapshot()
    job.state = BuildState(status="running")
    job.lines.clear()
    job.task = asyncio.create_task(_build(services, podman, job), name="setup-image-build")
    log.info("setup: agent image build started")
    return job.snapshot()


async def stop_image_build(services: AppServices) -> None:
    """Cancel a build in progress and a setup fix (``engine_setup``), and wait for them (the owner's shutdown)."""
    await engine_setup.stop(services)
    job = _jobs.get(services)
    task = job.task if job is not None else None
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _build(services: AppServices, podman: PodmanRuntime, job: _Job) -> None:
    from nanoclaw_app.runtime.podman_api import ImageBuildFailed

    started = time.monotonic()
    state = job.state

    def progress(item: BuildProgress) -> None:
        state.tag, state.built = item.tag, True
        if item.steps:
            state.step, state.steps = item.step, item.steps
        job.lines.append(item.line)

    build = asyncio.ensure_future(podman.images.ensure_base(progress))
    closing = asyncio.ensure_future(services.closing.wait())
    try:
        await asyncio.wait({build, closing}, return_when=asyncio.FIRST_COMPLETED)
        if not build.done():  # the host is stopping: give up waiting (the engine finishes or drops the build)
            build.cancel()
            state.status, state.error = "failed", "NanoClaw stopped during the build"
            return
        state.tag = build.result()
        state.status = "done"
        await app_state.put(services.ctx.db, ENGINE_DONE, now_iso())
    except ImageBuildFailed as err:
        state.status, state.error = "failed", str(err)
        for line in err.log_tail:
            if line not in job.lines:
                job.lines.append(line)
        state.fix = build_fix(f"{err}\n" + "\n".join(err.log_tail), services.settings.agent_base_image)
    except NanoClawError as err:
        log.warning("setup: the agent image could not be built: %s", err)
        state.status, state.error = "failed", str(err)
        state.fix = build_fix(str(err), services.settings.agent_base_image)
    except asyncio.CancelledError:
        build.cancel()
        state.status, state.error = "failed", "the build was cancelled"
        raise
    except Exception as err:
        log.exception("setup: building the agent image failed")
        state.status, state.error = "failed", f"{type(err).__name__}: {err}"
        state.fix = "NanoClaw hit an unexpected problem; the log (Activity, or nanoclaw.log) has the details."
    finally:
        closing.cancel()
        state.seconds = round(time.monotonic() - started, 1)
        snapshot = job.snapshot()
        services.ctx.events.publish("setup.image", status=snapshot.status, tag=snapshot.tag, built=snapshot.built,
                                    seconds=snapshot.seconds, error=snapshot.error, fix=snapshot.fix,
                                    log_tail=snapshot.lines[-30:])
        log.info("setup: agent image build %s after %.1f s", snapshot.status, snapshot.seconds)


def build_fix(text: str, base_image: str) -> str:
    """What to do about a failed build, from its error and log."""
    lower = text.lower()
    if "no space left" in lower:
        return ("The disk is full. Free some space (`podman system prune` removes images nothing uses), then build "
                "again.")
    if any(p in lower for p in _TLS):
        return ("A secure connection was refused during the build. If your network uses a company proxy that "
                "inspects traffic, add its CA certificates file in Settings (“CA certificates”), restart "
                "NanoClaw and build again.")
    if any(p in lower for p in _PULL_FAILED) or (base_image in text and any(p in lower for p in _NETWORK)):
        return (f"NanoClaw could not download the base image {base_image}. Check the internet connection and build "
                "again. Offline? Use a base image that is already on this computer: set the “agent base image” in "
                "Settings to one that `podman images` lists (such as a localhost/… image), restart NanoClaw and "
                "build again.")
    if any(p in lower for p in _NETWORK):
        return ("The build could not download packages. Check the internet connection (and the proxy settings, if "
                "you use one), then build again.")
    if "ca certificates file" in lower or "holds no pem certificate" in lower:
        return "Fix the CA certificates file in Settings (“CA certificates”), restart NanoClaw and build again."
    return ("The build log below shows what went wrong. `nanoclaw doctor` (in a terminal) checks Podman; build again "
            "once it is fixed.")
