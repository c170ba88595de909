"""The agent image and per-agent derived images: tags derived from their inputs, built once, with streamed progress.

The base agent image comes from the Containerfile shipped in ``agent_image/`` on top of the configured base image.
Its tag is a hash of everything that goes into it (Containerfile, pinned requirements, base image reference and id,
extra CA certificates), so a new app version with the same inputs reuses the image and a changed input rebuilds it.
An agent whose approved ``install_packages`` added apt or pip packages gets a derived image ``FROM`` the base one,
tagged by the packages; agents with the same packages share it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import shutil
import ssl
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nanoclaw_app.core.events import EventBus
from nanoclaw_app.errors import ConfigError
from nanoclaw_app.paths import resource
from nanoclaw_app.runtime.podman_api import ImageBuildFailed, PodmanApi

log = logging.getLogger(__name__)

IMAGE_NAME = "localhost/nanoclaw-agent"
DERIVED_NAME = "localhost/nanoclaw-agent-packages"
_STEP = re.compile(r"^STEP (\d+)/(\d+)")
_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


@dataclass(frozen=True, slots=True)
class BuildProgress:
    """One line of build output, with the step it belongs to (``step`` of ``steps``; 0 before the first)."""

    tag: str
    step: int
    steps: int
    line: str
    elapsed_s: float


ProgressCallback = Callable[[BuildProgress], None]


def agent_image_dir() -> Path:
    """The shipped Containerfile folder (works from source and from the PyInstaller bundle)."""
    return resource("nanoclaw_app", "runtime", "agent_image")


def read_ca_certificates(path: str) -> list[bytes]:
    """The PEM certificates in the configured file, one per item; a clear error when it holds none."""
    if not path:
        return []
    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read the CA certificates file {file}: {err}. Fix the path in settings.") from err
    certs = _CERT.findall(data)
    if not certs:
        raise ConfigError(f"{file} holds no PEM certificate (-----BEGIN CERTIFICATE-----); choose a .pem/.crt file")
    for index, cert in enumerate(certs, 1):
        try:  # a damaged certificate would only fail the build, minutes later, inside the container
            ssl.create_default_context(cadata=cert.decode("ascii"))
        except (ssl.SSLError, UnicodeDecodeError, ValueError) as err:
            raise ConfigError(f"certificate {index} in {file} is not a certificate that can be read ({err}); "
                              "choose the .pem/.crt file again") from err
    return list(certs)


class AgentImages:
    """Knows the agent image tags and builds missing ones, one build per tag at a time."""

    def __init__(
        self,
        api: Callable[[], PodmanApi] | PodmanApi,
        *,
        base_image: str,
        ca_certificates: str = "",
        events: EventBus | None = None,
    ) -> None:
        self._api = api
        self._base_image = base_image
        self._ca_file = ca_certificates
        self._events = events
        self._locks: dict[str, asyncio.Lock] = {}
        self._failed: dict[str, str] = {}
        self._present: set[str] = set()
        """Tags seen in the engine in this run: a cold start need not ask again (see :meth:`forget`)."""
        self._base_tag: str | None = None

    def use_inputs(self, *, base_image: str, ca_certificates: str) -> None:
        """Build on another base image or with other CA certificates from now on (the settings changed)."""
        if (base_image, ca_certificates) == (self._base_image, self._ca_file):
            return
        self._base_image, self._ca_file = base_image, ca_certificates
        self._base_tag = None
        self._failed.clear()  # derived images failed on the old base; the new one deserves a try

    def _podman(self) -> PodmanApi:
        return self._api if isinstance(self._api, PodmanApi) else self._api()

    # ------------------------------------------------------------------------------------------ tags

    async def base_tag(self) -> str:
        """The agent image tag for the current inputs, worked out once per process (it is on every cold start)."""
        if self._base_tag is None:
            self._base_tag = await self._compute_base_tag()
        return self._base_tag

    async def _compute_base_tag(self) -> str:
        folder = agent_image_dir()
        digest = hashlib.sha256()
        for name in ("Containerfile", "requirements.txt"):
            digest.update(name.encode() + b"\0" + (folder / name).read_bytes() + b"\0")
        digest.update(self._base_image.encode() + b"\0")
        base_id = await self._podman().image_id(self._base_image)
        digest.update((base_id or "").encode() + b"\0")
        for cert in read_ca_certificates(self._ca_file):
            digest.update(cert)
        return f"{IMAGE_NAME}:{digest.hexdigest()[:16]}"

    @staticmethod
    def derived_tag(base_tag: str, apt: Sequence[str], pip: Sequence[str]) -> str:
        """The tag of the image with these extra packages on top of ``base_tag``."""
        key = "\n".join([base_tag, *sorted(f"apt:{p}" for p in apt), *sorted(f"pip:{p}" for p in pip)])
        return f"{DERIVED_NAME}:{hashlib.sha256(key.encode()).hexdigest()[:16]}"

    # ------------------------------------------------------------------------------------------ ensure

    async def ensure_base(self, on_progress: ProgressCallback | None = None) -> str:
        """Build the agent image unless it exists; returns its tag."""
        tag = await self.base_tag()
        await self._ensure(tag, lambda ctx: self._write_base_context(ctx), on_progress)
        return tag

    async def ensure_for(
        self, apt: Sequence[str], pip: Sequence[str], on_progress: ProgressCallback | None = None
    ) -> str:
        """The image for an agent with these packages (the base image when none), built when missing.

        A derived build that failed once in this run is not retried on every wake: the error is raised again until
        the packages change, so the caller can fall back to the base image and say why.
        """
        base = await self.ensure_base(on_progress)
        if not apt and not pip:
            return base
        tag = self.derived_tag(base, apt, pip)
        if tag in self._failed:
            raise ImageBuildFailed(self._failed[tag], [])
        try:
            await self._ensure(tag, lambda ctx: self._write_derived_context(ctx, base, apt, pip), on_progress)
        except ImageBuildFailed as err:
            self._failed[tag] = str(err)
            raise
        return tag

    async def present_for(self, apt: Sequence[str], pip: Sequence[str]) -> str | None:
        """The image ``ensure_for`` would use, if it is already built; never builds (for work that can wait)."""
        tag = await self.base_tag()
        if apt or pip:
            tag = self.derived_tag(tag, apt, pip)
            if tag in self._failed:
                return None
        if tag not in self._present:
            if await self._podman().image_id(tag) is None:
                return None
            self._present.add(tag)
        return tag

    async def _ensure(
        self, tag: str, write_context: Callable[[Path], None], on_progress: ProgressCallback | None
    ) -> None:
        if tag in self._present:
            return
        lock = self._locks.setdefault(tag, asyncio.Lock())
        async with lock:
            podman = self._podman()
            if await podman.image_id(tag) is None:
                with tempfile.TemporaryDirectory(prefix="nanoclaw-build-") as tmp:
                    context = Path(tmp)
                    write_context(context)
                    await self._build(podman, context, tag, on_progress)
            self._present.add(tag)

    def forget(self, tag: str) -> bool:
        """Ask the engine about ``tag`` again next time (it may have been removed); False if it was not remembered."""
        if tag in self._present:
            self._present.discard(tag)
            return True
        return False

    async def _build(
        self, podman: PodmanApi, context: Path, tag: str, on_progress: ProgressCallback | None
    ) -> None:
        started = time.monotonic()
        step = [0, 0]
        loop = asyncio.get_running_loop()
        log.info("building agent image %s (base %s)", tag, self._base_image)
        self._publish("image.build_started", tag=tag, base_image=self._base_image)

        def on_line(line: str) -> None:  # called on a podman thread
            match = _STEP.match(line)
            if match:
                step[0], step[1] = int(match.group(1)), int(match.group(2))
            progress = BuildProgress(tag, step[0], step[1], line, time.monotonic() - started)
            loop.call_soon_threadsafe(self._progress, progress, on_progress)

        try:
            await podman.build(
                context, tag, buildargs={"BASE_IMAGE": self._base_image},
                labels={"io.nanoclaw.image": "agent"}, on_line=on_line,
            )
        except ImageBuildFailed as err:
            log.error("agent image %s failed to build: %s\n%s", tag, err, "\n".join(err.log_tail))
            self._publish("image.build_failed", tag=tag, error=str(err), log_tail=err.log_tail)
            raise
        elapsed = time.monotonic() - started
        log.info("agent image %s built in %.1f s", tag, elapsed)
        self._publish("image.build_done", tag=tag, seconds=round(elapsed, 1))

    def _progress(self, progress: BuildProgress, on_progress: ProgressCallback | None) -> None:
        self._publish("image.build_progress", tag=progress.tag, step=progress.step, steps=progress.steps,
                      line=progress.line[:500])
        if on_progress is not None:
            on_progress(progress)

    def _publish(self, kind: str, **data: object) -> None:
        if self._events is not None:
            self._events.publish(kind, **data)

    # ------------------------------------------------------------------------------------------ contexts

    def _write_base_context(self, context: Path) -> None:
        folder = agent_image_dir()
        shutil.copy(folder / "Containerfile", context / "Containerfile")
        shutil.copy(folder / "requirements.txt", context / "requirements.txt")
        ca_dir = context / "ca"
        ca_dir.mkdir()
        for index, cert in enumerate(read_ca_certificates(self._ca_file)):
            (ca_dir / f"extra-{index:03d}.crt").write_bytes(cert + b"\n")

    @staticmethod
    def _write_derived_context(context: Path, base: str, apt: Sequence[str], pip: Sequence[str]) -> None:
        """A Containerfile adding packages; names were validated when the agent asked (system_actions)."""
        lines = [f"FROM {base}"]
        if apt:
            names = " ".join(sorted(apt))
            lines.append(
                "RUN set -eux; apt-get update; "
                f"apt-get install -y --no-install-recommends {names}; rm -rf /var/lib/apt/lists/*"
            )
        if pip:
            names = " ".join(sorted(pip))
            lines.append(f"RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --progress-bar off "
                         f"{names}")
        (context / "Containerfile").write_text("\n".join(lines) + "\n", encoding="utf-8")
