"""The one module that imports podman-py: container and image calls through Podman's REST socket.

podman-py is synchronous, so every call runs on a small thread pool owned by :class:`PodmanApi` (not the shared
default executor, which a burst of slow engine calls must never starve). The event stream is the exception: it is
read with httpx over the same socket, because an async stream can be cancelled at once on stop, while podman-py's
blocking event generator would pin a thread until the next event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from podman import PodmanClient
from podman import api as podman_api
from podman.errors import APIError, ImageNotFound, NotFound, PodmanError

from nanoclaw_app.errors import TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")

API_VERSION = "v4.0.0"
CPU_PERIOD_US = 100_000
"""Libpod API path prefix for the raw calls; Podman 4 and 5 both serve it."""


class PodmanCallFailed(TransientError):
    """The engine refused or failed a call; the message says which and why."""


class ImageBuildFailed(PodmanCallFailed):
    """An image build failed; ``log_tail`` holds the last lines of its output."""

    def __init__(self, message: str, log_tail: Sequence[str]) -> None:
        super().__init__(message)
        self.log_tail = list(log_tail)


@dataclass(frozen=True, slots=True)
class BindMount:
    """A host path bound into the container."""

    source: Path
    target: str
    read_only: bool


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    """Everything :meth:`PodmanApi.run` needs to create and start one container."""

    name: str
    image: str
    command: list[str]
    labels: dict[str, str]
    environment: dict[str, str]
    mounts: list[BindMount]
    log_path: Path
    workdir: str
    memory_mb: int
    cpus: float
    pids_limit: int
    user: str | None = None
    selinux: list[str] = field(default_factory=list)
    """SELinux options as Podman's ``--security-opt label=...`` takes them after ``label=`` (e.g. ``disable``)."""
    network: str | None = None
    """``none`` for no network but loopback; None for the engine's default."""
    cap_drop: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """One container as listed by the engine."""

    id: str
    name: str
    state: str
    labels: dict[str, str]


@dataclass(frozen=True, slots=True)
class ExitEvent:
    """A container of ours ended (``died``) or was removed."""

    name: str
    labels: dict[str, str]
    exit_code: int | None


class PodmanApi:
    """Thin async facade over podman-py for the calls NanoClaw makes."""

    def __init__(self, url: str, *, threads: int = 4) -> None:
        self.url = url
        self._client = PodmanClient(base_url=url, timeout=120)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="podman")
        socket = urllib.parse.urlparse(url).path if url.startswith("unix://") else None
        self._socket = socket

    async def _call(self, fn: Callable[[], T], what: str) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn)
        except (APIError, PodmanError, OSError) as err:
            raise PodmanCallFailed(f"Podman could not {what}: {_explain(err)}") from err

    async def close(self) -> None:
        """Release the client and the thread pool."""
        await asyncio.get_running_loop().run_in_executor(self._pool, self._client.close)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------------------------------ engine

    async def info(self) -> dict[str, Any]:
        """``podman info`` as a dict (host.security.rootless, version, ...)."""
        return await self._call(lambda: dict(self._client.info()), "report its info")  # type: ignore[no-untyped-call]

    # ------------------------------------------------------------------------------------------ images

    async def image_id(self, ref: str) -> str | None:
        """The image's id, or None when it is not present locally."""

        def get() -> str | None:
            try:
                return str(self._client.images.get(ref).id)
            except ImageNotFound:
                return None

        return await self._call(get, f"look up image {ref}")

    async def image_names(self) -> list[str]:
        """The names (``repository:tag``) of the images in the engine's store."""

        def names() -> list[str]:
            return [str(tag) for image in self._client.images.list() for tag in (image.tags or [])]

        return await self._call(names, "list images")

    async def build(
        self,
        context_dir: Path,
        tag: str,
        *,
        containerfile: str = "Containerfile",
        buildargs: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> str:
        """Build ``context_dir`` into ``tag``, calling ``on_line`` for each output line as it streams; returns the id.

        podman-py's ``images.build`` only returns once the build ends, so the build endpoint is called through its
        API client directly and its JSON lines are read as they come.
        """
        tail: list[str] = []

        def run() -> str:
            params: dict[str, Any] = {
                "dockerfile": containerfile,
                "t": tag,
                "rm": True,
                "forcerm": True,
                "layers": True,
                "buildargs": json.dumps(dict(buildargs or {})),
                "labels": json.dumps(dict(labels or {})),
            }
            body = podman_api.create_tar(anchor=str(context_dir))
            try:
                response = self._client.api.post(
                    "/build", params=params, data=body, headers={"Content-type": "application/x-tar"}, stream=True
                )
                response.raise_for_status()
                for raw in response.iter_lines():
                    if not raw:
                        continue
                    item = json.loads(raw)
                    if "error" in item:
                        raise ImageBuildFailed(f"building {tag} failed: {item['error'].strip()}", tail[-30:])
                    for line in str(item.get("stream", "")).splitlines():
                        if line.strip():
                            tail.append(line)
                            del tail[:-200]
                            if on_line is not None:
                                on_line(line)
            finally:
                body.close()
            return str(self._client.images.get(tag).id)

        try:
            return await self._call(run, f"build image {tag}")
        except PodmanCallFailed as err:
            if isinstance(err, ImageBuildFailed):
                raise
            raise ImageBuildFailed(str(err), tail[-30:]) from err

    # ------------------------------------------------------------------------------------------ containers

    async def run(self, config: ContainerConfig) -> str:
        """Create and start a container; returns its id. It removes itself on exit (its log file stays)."""

        def create_and_start() -> str:
            container = self._create(config)
            try:
                container.start()
            except Exception:
                container.remove(force=True)
                raise
            return str(container.id)

        return await self._call(create_and_start, f"start container {config.name}")

    async def create_initialized(self, config: ContainerConfig) -> str:
        """Create a container and initialise it without starting it; returns its id.

        ``init`` does the slow part of a start ahead of time (the network namespace and its setup, the OCI runtime's
        ``create`` with every mount), so :meth:`start_created` is only the exec of the first process. Nothing of the
        image runs until then.
        """

        def create_and_init() -> str:
            container = self._create(config)
            try:
                container.init()
            except Exception:
                container.remove(force=True)
                raise
            return str(container.id)

        return await self._call(create_and_init, f"prepare container {config.name}")

    async def start_created(self, name: str) -> None:
        """Start a container made by :meth:`create_initialized`."""

        def start() -> None:  # by name: podman-py's containers.get would add an inspect round trip
            self._client.api.post(f"/containers/{urllib.parse.quote(name, safe='')}/start").raise_for_status()

        await self._call(start, f"start container {name}")

    def _create(self, config: ContainerConfig) -> Any:
        return self._client.containers.create(
            config.image,
            config.command,
            name=config.name,
            labels=config.labels,
            environment=config.environment,
            mounts=[
                {"type": "bind", "source": str(m.source), "target": m.target, "read_only": m.read_only}
                for m in config.mounts
            ],
            log_config={"Type": "k8s-file", "Config": {"path": str(config.log_path)}},
            working_dir=config.workdir,
            mem_limit=f"{config.memory_mb}m",
            # podman-py ignores nano_cpus; a CFS quota per 100 ms period is the same limit.
            cpu_period=CPU_PERIOD_US,
            cpu_quota=int(config.cpus * CPU_PERIOD_US),
            pids_limit=config.pids_limit,
            no_new_privileges=True,
            user=config.user,
            # podman-py hands these to the engine's selinux_opts unchanged: "disable", not "label=disable".
            security_opt=list(config.selinux) or None,
            cap_drop=list(config.cap_drop) or None,
            **({"network_mode": config.network} if config.network else {}),
            auto_remove=True,
            stop_timeout=10,
        )

    async def stop(self, name: str, *, grace_seconds: float) -> None:
        """SIGTERM, then SIGKILL after ``grace_seconds`` (Podman does both); a missing container is fine."""

        def stop() -> None:
            try:
                self._client.containers.get(name).stop(timeout=max(0, round(grace_seconds)))
            except APIError as err:
                if not _gone(err):
                    raise

        await self._call(stop, f"stop container {name}")

    async def kill(self, name: str) -> None:
        """SIGKILL now; a missing container is fine."""

        def kill() -> None:
            try:
                self._client.containers.get(name).kill("SIGKILL")
            except APIError as err:
                if not _gone(err) and "not running" not in str(err):
                    raise

        await self._call(kill, f"kill container {name}")

    async def remove(self, name: str) -> None:
        """Remove a container, running or not; a missing one is fine."""

        def rm() -> None:
            try:
                self._client.containers.get(name).remove(force=True)
            except APIError as err:
                if not _gone(err):
                    raise

        await self._call(rm, f"remove container {name}")

    async def list(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        """Every container (any state) carrying all the given labels."""
        if not labels:
            raise ValueError("list() needs at least one label to select our containers")
        (first_key, first_value), *rest = labels.items()

        def ls() -> list[ContainerInfo]:
            # podman-py passes a filter value through only as a single string, so filter on one label here and
            # check the others below.
            found = self._client.containers.list(all=True, filters={"label": f"{first_key}={first_value}"})
            result = []
            for c in found:
                state = c.attrs.get("State")
                status = state.get("Status") if isinstance(state, dict) else state
                info = ContainerInfo(id=str(c.id), name=str(c.name), state=str(status or "unknown"),
                                     labels=dict(c.labels or {}))
                if all(info.labels.get(k) == v for k, v in rest):
                    result.append(info)
            return result

        return await self._call(ls, "list containers")

    async def inspect(self, name: str) -> dict[str, Any] | None:
        """The container's full ``inspect`` document, or None when it does not exist."""

        def get() -> dict[str, Any] | None:
            try:
                return dict(self._client.containers.get(name).inspect())
            except APIError as err:
                if _gone(err):
                    return None
                raise

        return await self._call(get, f"inspect container {name}")

    # ------------------------------------------------------------------------------------------ events

    async def exits(self, labels: Mapping[str, str]) -> AsyncGenerator[ExitEvent, None]:
        """Yield an :class:`ExitEvent` for each of our containers that dies or is removed, until cancelled.

        Raises ``PodmanCallFailed`` when the stream cannot be opened or breaks; the caller reconnects.
        """
        filters = json.dumps({"type": ["container"], "event": ["died", "remove"],
                              "label": [f"{k}={v}" for k, v in labels.items()]})
        transport, base_url = self._events_target()
        # No read timeout: the stream is quiet until a container ends; cancelling the task ends it.
        timeout = httpx.Timeout(10.0, read=None)
        async with httpx.AsyncClient(transport=transport, base_url=base_url, timeout=timeout) as client:
            try:
                async with client.stream(
                    "GET", f"/{API_VERSION}/libpod/events", params={"stream": "true", "filters": filters}
                ) as response:
                    if response.status_code != 200:
                        body = (await response.aread()).decode(errors="replace")
                        raise PodmanCallFailed(f"Podman refused the event stream ({response.status_code}): {body}")
                    async for line in response.aiter_lines():
                        event = _exit_event(line)
                        if event is not None:
                            yield event
            except httpx.HTTPError as err:
                raise PodmanCallFailed(f"the Podman event stream broke: {err}") from err


    def _events_target(self) -> tuple[httpx.AsyncHTTPTransport, str]:
        """The unix socket, or a ``tcp://host:port`` engine (the relay to a Windows machine's named pipe)."""
        if self._socket is not None:
            return httpx.AsyncHTTPTransport(uds=self._socket), "http://podman"
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme in ("tcp", "http") and parts.hostname and parts.port:
            return httpx.AsyncHTTPTransport(), f"http://{parts.hostname}:{parts.port}"
        raise PodmanCallFailed(f"events need a unix:// or tcp:// engine URL, not {self.url}")


def _exit_event(line: str) -> ExitEvent | None:
    """Parse one event line (docker-compatible shape, as the REST API sends it)."""
    if not line.strip():
        return None
    try:
        item = json.loads(line)
    except ValueError:
        log.debug("unparsable podman event: %r", line[:200])
        return None
    actor = item.get("Actor") or {}
    attributes = dict(actor.get("Attributes") or item.get("Attributes") or {})
    action = item.get("Action") or item.get("status") or item.get("Status")
    if action not in ("died", "remove"):
        return None
    name = attributes.get("name") or item.get("Name") or ""
    raw_code = attributes.get("containerExitCode", item.get("ContainerExitCode"))
    code: int | None
    try:
        code = int(raw_code) if raw_code is not None and action == "died" else None
    except (TypeError, ValueError):
        code = None
    return ExitEvent(name=str(name), labels={k: str(v) for k, v in attributes.items()}, exit_code=code)


_GONE = ("no such container", "no container with name or id", "has already been removed", "is being removed")


def _gone(err: APIError) -> bool:
    """Whether the engine says the container no longer exists (or is removing itself right now).

    Podman answers that with a 404 only sometimes: a container that removes itself (``--rm``) while we look at it
    comes back as a 500 whose text says "no such container". Both mean there is nothing left to do.
    """
    if isinstance(err, NotFound):
        return True
    text = f"{err} {getattr(err, 'explanation', None) or ''}".lower()
    return any(marker in text for marker in _GONE)


def _explain(err: BaseException) -> str:
    """A one-line reason from a podman-py or socket error."""
    explanation = getattr(err, "explanation", None)
    text = str(explanation or err).strip()
    return text.splitlines()[0] if text else type(err).__name__
