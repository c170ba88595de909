"""Agent sessions in Podman containers: the sandbox every user session runs in.

One container per session, named and labelled after this install and the session, so a later host run finds and
removes what an earlier one left behind. Mounts follow DESIGN.md §6: the session folder at ``/workspace`` (rw), the
agent's folder at ``/workspace/agent`` (rw), global memory at ``/workspace/global`` (ro), the runner's source and the
skills under ``/app`` (ro), approved extra folders under ``/workspace/extra`` and, on Linux, the model gateway's socket.
The environment carries the timezone, the provider settings and a per-container gateway token — never a key.

Container output goes straight to the session's log file under ``<home>/logs/containers/`` (Podman's k8s-file log
driver appends there, and the file outlives the container), so a crash can always be read afterwards. It is never
inside a mounted folder: a container could swap it for a link and make the host append to any file of the user's.

Exits are learned from Podman's event stream (one connection for all containers) with a periodic reconcile as a
safety net for missed events.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from nanoclaw_app.core.events import EventBus
from nanoclaw_app.errors import NanoClawError, TransientError
from nanoclaw_app.ids import base36
from nanoclaw_app.runtime.base import ExitCallback, SessionSpec
from nanoclaw_app.runtime.container_config import (
    LABEL_INSTALL,
    LABEL_SESSION,
    EngineFacts,
    session_container,
)
from nanoclaw_app.runtime.engine_info import engine_notes, rootless_refusal, security_options
from nanoclaw_app.runtime.host_doors import Access, HostDoors
from nanoclaw_app.runtime.image import AgentImages
from nanoclaw_app.runtime.podman_api import ContainerConfig, ImageBuildFailed, PodmanApi, PodmanCallFailed
from nanoclaw_app.runtime.podman_socket import PodmanService
from nanoclaw_app.runtime.standby import MountGone, Standby, fingerprint
from nanoclaw_app.settings import Settings

if TYPE_CHECKING:
    from nanoclaw_app.egress.server import EgressServer
    from nanoclaw_app.gateway.server import ModelGateway

log = logging.getLogger(__name__)

EXIT_GATEWAY_LOST = 75
"""The runner's exit code when the gateway vanished mid-turn (a host restart): claims are kept for the retry."""
RECONCILE_SECONDS = 15.0
EVENT_RETRY_SECONDS = 1.0

Notice = Callable[[str, str], Awaitable[None]]
"""``await notice(session_id, text)``: something the agent should be told at its next turn (e.g. packages failed)."""


def install_id(home: Path) -> str:
    """A short id for this install (its home dir): two installs on one machine never touch each other's containers."""
    return hashlib.sha256(str(home).encode()).hexdigest()[:10]


class PodmanRuntime:
    """Starts, watches and stops session containers through Podman's REST API."""

    name = "podman"
    uses_model_keys = True

    def __init__(
        self,
        settings: Settings,
        *,
        service: PodmanService | None = None,
        gateway: ModelGateway | None = None,
        egress: EgressServer | None = None,
        events: EventBus | None = None,
        notice: Notice | None = None,
    ) -> None:
        self._settings = settings
        self._service = service or PodmanService(configured_url=settings.podman_url, run_dir=settings.paths.run)
        self._doors = HostDoors(gateway, egress)
        self._events = events
        self._notice = notice
        self.install = install_id(settings.paths.home)
        self._api: PodmanApi | None = None
        """The connection once :meth:`open` removed the orphans (starts wait for it)."""
        self._engine: PodmanApi | None = None
        """The same connection from :meth:`connect` on, before any orphan was removed."""
        self._rootless = False
        self._selinux: list[str] = []
        self._notes: list[str] = []
        self._connect_lock = asyncio.Lock()
        self.images = AgentImages(
            self._require_api, base_image=settings.agent_base_image,
            ca_certificates=settings.agent_ca_certificates, events=events,
        )
        self._callbacks: list[ExitCallback] = []
        self._running: dict[str, str] = {}  # session id -> container name
        self._logs: dict[str, Path] = {}
        self._exit_waiters: dict[str, asyncio.Future[int | None]] = {}
        self._watch: asyncio.Task[None] | None = None
        self._closed = False
        self._starts = 0
        self._standby: dict[str, Standby] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    # ------------------------------------------------------------------------------------------ connection

    @property
    def api(self) -> PodmanApi | None:
        """The connected API (None until :meth:`open` succeeded)."""
        return self._api

    @property
    def rootless(self) -> bool:
        """Whether the engine runs rootless (container root is the user)."""
        return self._rootless

    @property
    def engine_notes(self) -> list[str]:
        """What works worse than expected here (limits not enforced, slow storage), as sentences with a fix."""
        return list(self._notes)

    def _require_api(self) -> PodmanApi:
        if self._api is None:
            raise TransientError("Podman is not connected yet")
        return self._api

    async def open(self) -> None:
        """Find or start the engine, remove an earlier run's containers and watch exits.

        Raises ``PodmanUnavailable`` saying what to fix. The orphans go under the connect lock, before the API is
        published: every container start waits here first, so none can be mistaken for a leftover.
        """
        async with self._connect_lock:
            if self._api is not None:
                return
            api = await self._connect()
            removed = await self._remove_orphans(api)
            self._api = api
            if removed:
                log.info("removed %d orphan containers from an earlier run", removed)
            self._watch = asyncio.create_task(self._watch_exits(), name="podman-exits")

    async def connect(self) -> PodmanApi:
        """Find or start the engine and learn how it runs, removing and watching nothing.

        For ``doctor --live``, which starts one container of its own: the containers of a host running meanwhile are
        not its to remove. Raises ``PodmanUnavailable`` saying what to fix.
        """
        async with self._connect_lock:
            return await self._connect()

    async def _connect(self) -> PodmanApi:
        """The engine connection (made once), with rootless mode, SELinux options and engine notes learned."""
        if self._engine is not None:
            return self._engine
        endpoint = await self._service.ensure()
        api = PodmanApi(endpoint.url)
        try:
            info = await api.info()
        except PodmanCallFailed:
            await api.close()
            raise
        self._rootless = bool(((info.get("host") or {}).get("security") or {}).get("rootless", endpoint.rootless))
        refusal = rootless_refusal(info) if endpoint.machine is None else None
        if refusal is not None:
            await api.close()
            raise refusal
        self._selinux = security_options(info)
        self._notes = engine_notes(info)
        self._engine = api
        version = (info.get("version") or {}).get("Version", "?")
        mode = "rootless" if self._rootless else "rootful"
        log.info("Podman %s connected at %s (%s)", version, endpoint.url, mode)
        if self._selinux:
            log.info("SELinux is on: agent containers run with label separation off (see runtime/engine_info.py)")
        for note in self._notes:
            log.warning("%s", note)
        return api

    async def close(self) -> None:
        """Remove the standby containers, stop watching and release the engine connection (and a service we started)."""
        self._closed = True
        for session_id in list(self._standby):
            await self.discard_standby(session_id)
        task, self._watch = self._watch, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._api = None
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.close()
        await self._service.close()

    # ------------------------------------------------------------------------------------------ runtime API

    def on_exit(self, callback: ExitCallback) -> None:
        """Register an exit callback."""
        self._callbacks.append(callback)

    async def start(self, spec: SessionSpec) -> None:
        """Start the session's container (no-op when it already runs): its standby when one matches, else a new one."""
        sid = spec.session_id
        if sid in self._running:
            return
        async with self._session_lock(sid):
            if sid in self._running:
                return
            await self.open()
            image = await self._image_for(spec)
            standby = self._standby.pop(sid, None)
            if standby is not None and await self._start_standby(spec, image, standby):
                return
            await self._start_new(spec, image)

    async def _start_new(self, spec: SessionSpec, image: str) -> None:
        api = self._require_api()
        name = self._new_name(spec)
        access = await self._attach(spec)
        try:
            config = self._config(spec, name, image, access)
        except BaseException:
            self._revoke(spec.session_id)
            raise
        self._running[spec.session_id] = name
        self._logs[spec.session_id] = spec.log_path
        try:
            try:
                await api.run(config)
            except PodmanCallFailed:
                if not self.images.forget(image):
                    raise
                # Known present earlier in this run, so not asked again: it may have been removed since. Check (or
                # rebuild) it and try once more.
                log.info("starting %s failed; checking its image %s and trying once more", name, image)
                await api.run(replace(config, image=await self._image_for(spec)))
        except BaseException:
            self._running.pop(spec.session_id, None)
            self._revoke(spec.session_id)
            raise
        log.info("container %s started for session %s (image %s)", name, spec.session_id, image)

    async def _start_standby(self, spec: SessionSpec, image: str, standby: Standby) -> bool:
        """Start ``standby`` if it still matches a fresh start; otherwise (or when starting fails) remove it."""
        sid = spec.session_id
        try:
            matches = fingerprint(self._config(spec, standby.name, image, None)) == standby.fingerprint
        except MountGone:
            matches = False
        if not matches:
            log.info("the standby container of session %s no longer matches its settings or folders; starting a "
                     "new one", sid)
            await self._remove_standby(sid, standby)
            return False
        self._running[sid] = standby.name
        self._logs[sid] = spec.log_path
        try:
            await self._require_api().start_created(standby.name)
        except PodmanCallFailed as err:
            log.info("starting the standby container of session %s failed (%s); starting a new one", sid, err)
            self._running.pop(sid, None)
            self._logs.pop(sid, None)
            await self._remove_standby(sid, standby)
            return False
        log.info("container %s started for session %s from standby (image %s)", standby.name, sid, image)
        return True

    # ------------------------------------------------------------------------------------------ standby

    async def prepare_standby(self, spec: SessionSpec) -> bool:
        """Create and initialise the session's next container without starting it (see ``runtime/standby.py``).

        Only for a session with no container, only with an image already present (never a build), and at most
        ``container_standby`` of them: the oldest makes room. Returns whether one was made.
        """
        sid = spec.session_id
        limit = self._settings.container_standby
        if limit < 1 or self._closed:
            return False
        async with self._session_lock(sid):
            if sid in self._running or sid in self._standby or self._closed:
                return False
            await self.open()
            image = await self.images.present_for(spec.packages_apt, spec.packages_pip)
            if image is None:
                log.debug("no standby for session %s: its image is not built yet", sid)
                return False
            oldest_first = sorted(self._standby, key=lambda other: self._standby[other].made_at)
            for old in oldest_first[: max(0, len(oldest_first) - limit + 1)]:
                await self._remove_standby(old, self._standby.pop(old))  # popped at once: a start can't take it
            name = self._new_name(spec)
            access = await self._attach(spec)
            try:
                made_with = fingerprint(self._config(spec, name, image, None))
                await self._require_api().create_initialized(self._config(spec, name, image, access))
            except BaseException:
                self._revoke(sid)
                raise
            self._standby[sid] = Standby(name, made_with, access)
        log.info("standby container %s ready for session %s", name, sid)
        return True

    async def discard_standby(self, session_id: str) -> None:
        """Remove the session's standby, if it has one (its folders or agent are going away, or it is too old).

        Waits for a standby being made for the session, so it cannot appear right after this returns.
        """
        async with self._session_lock(session_id):
            standby = self._standby.pop(session_id, None)
            if standby is not None:
                await self._remove_standby(session_id, standby)

    async def _remove_standby(self, session_id: str, standby: Standby) -> None:
        if session_id not in self._running:  # its token is the session's only one then
            self._revoke(session_id)
        api = self._api
        if api is None:
            return
        try:
            await api.remove(standby.name)
        except PodmanCallFailed as err:  # an orphan then: the next host start removes it
            log.warning("could not remove standby container %s: %s", standby.name, err)

    def has_standby(self, session_id: str) -> bool:
        """Whether the session's next container is prepared."""
        return session_id in self._standby

    def _session_lock(self, session_id: str) -> asyncio.Lock:
        return self._locks.setdefault(session_id, asyncio.Lock())

    # ------------------------------------------------------------------------------------------ lifecycle

    async def stop(self, session_id: str, *, grace_seconds: float = 5.0) -> None:
        """SIGTERM, kill after the grace period; returns once the exit has been reported."""
        name = self._running.get(session_id)
        if name is None:
            return
        loop = asyncio.get_running_loop()
        waiter = self._exit_waiters.get(session_id)
        if waiter is None:
            waiter = loop.create_future()
            self._exit_waiters[session_id] = waiter
        api = self._require_api()
        try:
            await api.stop(name, grace_seconds=grace_seconds)
        except PodmanCallFailed as err:
            log.warning("stopping %s failed (%s); killing it", name, err)
            with contextlib.suppress(PodmanCallFailed):
                await api.kill(name)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout=grace_seconds + 10)
        except TimeoutError:
            log.warning("no exit event for %s after stop; removing it and reporting the exit", name)
            with contextlib.suppress(PodmanCallFailed):
                await api.remove(name)
            await self._exited(session_id, None)

    async def is_running(self, session_id: str) -> bool:
        """Whether the session's container runs (kept current by the event stream)."""
        return session_id in self._running

    async def notify(self, session_id: str) -> None:
        """Nothing to do: the runner watches ``inbound.db`` through the bind mount (and polls as a fallback)."""

    async def remove_orphans(self) -> int:
        """Remove every container of this install that this host did not start (connecting first if needed)."""
        try:
            await self.open()
        except NanoClawError as err:
            log.warning("cannot look for orphan containers: %s", err)
            return 0
        return await self._remove_orphans(self._require_api())

    async def _remove_orphans(self, api: PodmanApi) -> int:
        """Remove them, best effort: no engine answer here may keep the host from starting.

        A container that fails to go is logged and left for the next start (a leftover holds no messages; the sweep
        retries their work).
        """
        try:
            found = await api.list({LABEL_INSTALL: self.install})
        except NanoClawError as err:
            log.warning("cannot look for orphan containers: %s", err)
            return 0
        removed = 0
        ours = set(self._running.values()) | {standby.name for standby in self._standby.values()}
        for info in found:
            if info.name in ours:
                continue
            log.info("removing orphan container %s (%s) of session %s", info.name, info.state,
                     info.labels.get(LABEL_SESSION))
            try:
                await api.remove(info.name)
            except Exception as err:  # any failure here is a warning, never fatal
                log.warning("could not remove orphan container %s; it is left for the next start: %s",
                            info.name, err, exc_info=not isinstance(err, NanoClawError))
                continue
            removed += 1
        return removed

    # ------------------------------------------------------------------------------------------ spec → config

    async def _image_for(self, spec: SessionSpec) -> str:
        """The agent's image, built when missing; a failed package build falls back to the plain image."""
        try:
            return await self.images.ensure_for(spec.packages_apt, spec.packages_pip)
        except ImageBuildFailed as err:
            if not (spec.packages_apt or spec.packages_pip):
                raise
            base = await self.images.ensure_base()
            text = (
                "Your extra packages could not be installed, so this container runs without them. "
                f"The build said: {err}"
            )
            self._publish("image.packages_failed", agent_group_id=spec.agent_group_id, error=str(err))
            if self._notice is not None:
                try:
                    await self._notice(spec.session_id, text)
                except Exception:
                    log.exception("could not tell session %s that its packages failed", spec.session_id)
            return base

    def _new_name(self, spec: SessionSpec) -> str:
        """A fresh name per container: events about an earlier one of the session (a late 'died') never match it."""
        self._starts += 1
        return f"nanoclaw-{self.install}-{spec.session_id}-{base36(time.time_ns() // 1_000_000)}{self._starts}"

    async def _attach(self, spec: SessionSpec) -> Access:
        return await self._doors.attach(spec)

    def session_config(self, spec: SessionSpec, name: str, image: str, command: Sequence[str]) -> ContainerConfig:
        """A session's container as :meth:`start` makes it, running ``command`` instead of the runner.

        The same mounts, user, limits, network, dropped capabilities and labels, but no host doors. ``doctor --live``
        checks the real mounts with it; call :meth:`connect` first (the user and SELinux options depend on the engine).
        """
        return replace(self._config(spec, name, image, None), command=list(command))

    def _config(self, spec: SessionSpec, name: str, image: str, access: Access | None) -> ContainerConfig:
        engine = EngineFacts(install=self.install, rootless=self._rootless, selinux=tuple(self._selinux))
        return session_container(spec, name, image, access, settings=self._settings, doors=self._doors,
                                 engine=engine)

    # ------------------------------------------------------------------------------------------ exits

    async def _watch_exits(self) -> None:
        """Follow the event stream (reconnecting) and reconcile periodically."""
        reconcile = asyncio.create_task(self._reconcile_loop(), name="podman-reconcile")
        try:
            while not self._closed:
                api = self._api
                if api is None:
                    return
                try:
                    async for event in api.exits({LABEL_INSTALL: self.install}):
                        session_id = event.labels.get(LABEL_SESSION)
                        if session_id:
                            await self._on_event(session_id, event.name, event.exit_code)
                except PodmanCallFailed as err:
                    log.warning("%s; reconnecting", err)
                await asyncio.sleep(EVENT_RETRY_SECONDS)
                await self._reconcile()
        finally:
            reconcile.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reconcile

    async def _on_event(self, session_id: str, name: str, code: int | None) -> None:
        if self._running.get(session_id) != name:
            return  # e.g. the 'remove' that follows a 'died' already handled
        if code is None and await self._still_listed(name):
            return
        await self._exited(session_id, code)

    async def _still_listed(self, name: str) -> bool:
        api = self._api
        if api is None:
            return False
        with contextlib.suppress(PodmanCallFailed):
            info = await api.inspect(name)
            return info is not None and bool((info.get("State") or {}).get("Running"))
        return False

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(RECONCILE_SECONDS)
            await self._reconcile()
            for session_id in [sid for sid, standby in self._standby.items() if standby.expired()]:
                log.info("removing the standby container of session %s: unused for a day", session_id)
                await self.discard_standby(session_id)

    async def _reconcile(self) -> None:
        """Report exits the event stream missed: sessions we think run whose container is gone or stopped."""
        api = self._api
        if api is None or not self._running:
            return
        try:
            listed = {info.name: info.state for info in await api.list({LABEL_INSTALL: self.install})}
        except PodmanCallFailed as err:
            log.warning("cannot reconcile containers: %s", err)
            return
        for session_id, name in list(self._running.items()):
            state = listed.get(name)
            if state is None or state in ("exited", "stopped", "dead"):
                log.warning("container %s of session %s is %s without an exit event", name, session_id,
                            state or "gone")
                await self._exited(session_id, None)

    async def _exited(self, session_id: str, code: int | None) -> None:
        """Record an exit once: revoke the token, note it in the log, wake stop() and tell the callbacks."""
        name = self._running.pop(session_id, None)
        if name is None:
            return
        self._revoke(session_id)
        log_path = self._logs.pop(session_id, None)
        if log_path is not None:
            self._append_log(log_path, f"[nanoclaw] container {name} exited with code {code}")
        waiter = self._exit_waiters.pop(session_id, None)
        requested = waiter is not None
        if waiter is not None and not waiter.done():
            waiter.set_result(code)
        if code == EXIT_GATEWAY_LOST:
            log.info("container of session %s stopped because the model gateway was gone; its work is kept and "
                     "retried", session_id)
        elif not requested and code not in (0, None):
            log.warning("container of session %s exited with code %s; see %s", session_id, code, log_path)
        for callback in self._callbacks:
            try:
                await callback(session_id, code)
            except Exception:
                log.exception("exit callback for session %s failed", session_id)

    def _revoke(self, session_id: str) -> None:
        self._doors.revoke(session_id)

    @staticmethod
    def _append_log(log_path: Path, text: str) -> None:
        """Add a line in the log driver's own format, so the file stays one consistent stream."""
        stamp = datetime.now(UTC).isoformat(timespec="microseconds")
        try:
            with log_path.open("a", encoding="utf-8") as file:
                file.write(f"{stamp} stderr F {text}\n")
        except OSError as err:
            log.warning("cannot append to %s: %s", log_path, err)

    def _publish(self, kind: str, **data: object) -> None:
        if self._events is not None:
            self._events.publish(kind, **data)
