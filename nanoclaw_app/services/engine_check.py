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
from pathlib import Path
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
                "short-name", "creating build container", "pinging container registry")
_NETWORK = ("no such host", "dial tcp", "i/o timeout", "tls handshake timeout", "temporary failure resolving",
            "could not resolve", "network is unreachable", "connection refused", "failed to establish a new "
            "connection", "connection reset")
_TLS = ("x509", "certificate verify failed", "certificate_verify_failed", "problem confirming the ssl certificate",
        "self-signed certificate in certificate chain", "ssl certificate problem", "certificate verification failed",
        "unable to get local issuer certificate", "unknown authority")
"""What pip, apt, curl and Go (Podman) say when a secure connection's certificate is not trusted (samples from real
runs: tests/unit/runtime/build_failures/)."""
_SYSTEM_CA_FILES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")
"""This computer's own trusted certificates (Debian/Ubuntu, Fedora, macOS): a proxy this computer already trusts is in
there, so it is the file to suggest."""


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
    """The engine's own message (shown with the log, behind a toggle)."""
    fix: str = ""
    cause: str = ""
    """Why it failed, for the page's fix: ``pull`` (the base image), ``tls`` (a proxy's certificate), ``network``,
    ``disk``, ``ca_file``, ``stopped`` or ``other``."""
    headline: str = ""
    """What failed, in one plain sentence."""
    local_bases: list[str] = field(default_factory=list)
    """Images on this computer that can serve as the base instead (offered when the base image cannot be had)."""
    ca_file: str = ""
    """The CA certificates file to suggest: the one set, or this computer's own when none is."""


class _Job:
    """The one build of one host: its state and its task."""

    def __init__(self) -> None:
        self.state = BuildState()
        self.lines: deque[str] = deque(maxlen=LOG_LINES)
        self.task: asyncio.Task[None] | None = None

    def snapshot(self) -> BuildState:
        s = self.state
        return BuildState(status=s.status, tag=s.tag, step=s.step, steps=s.steps, lines=list(self.lines),
                          built=s.built, seconds=s.seconds, error=s.error, fix=s.fix, cause=s.cause,
                          headline=s.headline, local_bases=list(s.local_bases), ca_file=s.ca_file)


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
    from nanoclaw_app.runtime.podman_endpoint import MachineStarting, PodmanUnavailable

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
        # Plain words: "rootless"/"rootful" mean nothing to a home user; whether it needs administrator rights does.
        rights = "without administrator rights" if podman.rootless else "with administrator rights"
        report.detail = f"Podman {version} is running ({rights})."
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
            _fail(state, "stopped", "NanoClaw stopped during the build", "NanoClaw stopped during the build.",
                  "Open NanoClaw again and build again.")
            return
        state.tag = build.result()
        state.status = "done"
        await app_state.put(services.ctx.db, ENGINE_DONE, now_iso())
    except ImageBuildFailed as err:
        for line in err.log_tail:
            if line not in job.lines:
                job.lines.append(line)
        await _explain(services, podman, state, str(err), "\n".join(job.lines))
    except NanoClawError as err:
        log.warning("setup: the agent image could not be built: %s", err)
        await _explain(services, podman, state, str(err), "")
    except asyncio.CancelledError:
        build.cancel()
        _fail(state, "stopped", "the build was cancelled", "The build was cancelled.", "Build again.")
        raise
    except Exception as err:
        log.exception("setup: building the agent image failed")
        _fail(state, "other", f"{type(err).__name__}: {err}", "NanoClaw hit an unexpected problem during the build.",
              "NanoClaw hit an unexpected problem; the log (Activity, or nanoclaw.log) has the details.")
    finally:
        closing.cancel()
        state.seconds = round(time.monotonic() - started, 1)
        snapshot = job.snapshot()
        services.ctx.events.publish("setup.image", status=snapshot.status, tag=snapshot.tag, built=snapshot.built,
                                    seconds=snapshot.seconds, error=snapshot.error, fix=snapshot.fix,
                                    cause=snapshot.cause, headline=snapshot.headline,
                                    local_bases=snapshot.local_bases, ca_file=snapshot.ca_file,
                                    log_tail=snapshot.lines[-30:])
        log.info("setup: agent image build %s after %.1f s", snapshot.status, snapshot.seconds)


def _fail(state: BuildState, cause: str, error: str, headline: str, fix: str) -> None:
    state.status, state.cause, state.error, state.headline, state.fix = "failed", cause, error, headline, fix


async def _explain(services: AppServices, podman: PodmanRuntime, state: BuildState, error: str, output: str) -> None:
    """A failed build in words, with what the page can offer: a local base image, or the proxy's certificate."""
    settings = services.settings
    found = diagnose(error, output, settings.agent_base_image)
    _fail(state, found.cause, error, found.headline, found.fix)
    if found.cause == "pull":
        state.local_bases = await local_bases(podman, settings.agent_base_image)
    if found.cause in ("tls", "ca_file"):
        state.ca_file = settings.agent_ca_certificates or suggested_ca_file()


@dataclass(frozen=True)
class Diagnosis:
    """Why a build failed: a cause the page acts on, a one-line headline and the fix in words."""

    cause: str
    headline: str
    fix: str


def diagnose(error: str, output: str, base_image: str) -> Diagnosis:
    """What went wrong in a failed build, from the engine's error and the build's output (apt's, pip's, curl's).

    Only the error can say the base image was not pulled: the output names the base image in its first step, and a
    later step's network trouble is not the base image's.
    """
    lower = f"{error}\n{output}".lower()
    said = error.lower()
    short = _short_name(base_image)
    if "no space left" in lower:
        return Diagnosis("disk", "The disk of this computer is full.",
                         "Free some space (`podman system prune` removes images nothing uses), then build again.")
    if "ca certificates file" in lower or "holds no pem certificate" in lower or "not a certificate" in lower:
        return Diagnosis("ca_file", "The certificate file in the settings cannot be used.",
                         "Choose the certificate file of your network again below, then build again.")
    if any(p in said for p in _PULL_FAILED) or (base_image in error and any(p in said for p in _NETWORK)):
        if any(p in said for p in _TLS):
            why = "your network's certificate is not trusted by Podman"
        elif any(p in said for p in _NETWORK):
            why = "the image registry cannot be reached from this computer"
        else:
            why = "the image registry refused it"
        return Diagnosis("pull", f"NanoClaw could not download the base image {short}: {why}.",
                         "Use a base image that is already on this computer (below), or connect to the internet "
                         "and build again.")
    if any(p in lower for p in _TLS):
        return Diagnosis("tls", "Your network checks secure connections with its own certificate, and the build "
                                "does not trust it yet.",
                         "Give NanoClaw that certificate file below (your network's administrator has it; a "
                         "computer that already works on this network trusts it), then NanoClaw builds again.")
    if any(p in lower for p in _NETWORK):
        return Diagnosis("network", "The build could not download the programs the agent needs.",
                         "Check the internet connection (and the proxy settings, if you use one), then build again.")
    return Diagnosis("other", "The agent image could not be built.",
                     "The build log below shows what went wrong. `nanoclaw doctor` (in a terminal) checks Podman; "
                     "build again once it is fixed.")


def _short_name(image: str) -> str:
    """``python:3.11-slim-bookworm`` for ``docker.io/library/python:3.11-slim-bookworm``: the part a person knows."""
    return image.removeprefix("docker.io/").removeprefix("library/")


_BASE_NAMES = ("localhost/nanoclaw-base:", "docker.io/library/python:", "python:")
"""Images that can carry the agent image: NanoClaw's own base images and Debian-based official Python images."""


async def local_bases(podman: PodmanRuntime, current: str) -> list[str]:
    """Images on this computer that can serve as the base image instead of ``current`` (NanoClaw's first)."""
    api = podman.api
    if api is None:
        return []
    try:
        names = await api.image_names()
    except NanoClawError as err:
        log.warning("setup: could not list the local images: %s", err)
        return []
    usable = [n for n in names if n != current and n.startswith(_BASE_NAMES) and "alpine" not in n]
    return sorted(set(usable), key=lambda n: (not n.startswith(_BASE_NAMES[0]), n))


def suggested_ca_file() -> str:
    """This computer's own certificate bundle, if it has one where systems keep it ("" when not)."""
    return next((name for name in _SYSTEM_CA_FILES if Path(name).is_file()), "")


def apply_image_settings(services: AppServices) -> None:
    """The base image or CA file changed in the running host: the next build and container start use them."""
    podman = _podman(services)
    if podman is None:
        return
    settings = services.settings
    podman.images.use_inputs(base_image=settings.agent_base_image, ca_certificates=settings.agent_ca_certificates)
    log.info("setup: agent image inputs changed (base %s, CA file %s)", settings.agent_base_image,
             settings.agent_ca_certificates or "none")
