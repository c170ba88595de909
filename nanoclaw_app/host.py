"""The composition root: builds the host from settings, starts components in order and stops them in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from functools import partial
from types import TracebackType

from nanoclaw_app.channels import registry as channel_registry
from nanoclaw_app.channels.manifest import BuildFn, ChannelDeps
from nanoclaw_app.channels.webchat.adapter import WebchatAdapter
from nanoclaw_app.core import pairing
from nanoclaw_app.core.adapter_contract import ChannelAdapter, ChannelRegistry, ChannelStatus
from nanoclaw_app.core.approvals.service import ApprovalService
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.delivery import Delivery
from nanoclaw_app.core.due import DueTimer
from nanoclaw_app.core.events import EventBus
from nanoclaw_app.core.host_callbacks import HostEvents
from nanoclaw_app.core.notes import write_system_note
from nanoclaw_app.core.notify import notify_owner
from nanoclaw_app.core.router import Router
from nanoclaw_app.core.sweep import Sweep, idle_check
from nanoclaw_app.core.system_actions import SystemActions, register_approval_handlers
from nanoclaw_app.core.turn_budget import TurnBudget
from nanoclaw_app.core.typing_keeper import TypingKeeper
from nanoclaw_app.core.watcher import OutboundWatcher
from nanoclaw_app.db import egress_events
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.migrate import migrate
from nanoclaw_app.db.rows import Session
from nanoclaw_app.egress.decisions import EgressDecisions
from nanoclaw_app.egress.server import EgressServer
from nanoclaw_app.errors import ConfigError, NanoClawError
from nanoclaw_app.gateway.server import ModelGateway
from nanoclaw_app.gateway.upstream import build_upstreams
from nanoclaw_app.host_state import HostState
from nanoclaw_app.runfile import remove_run_file, write_run_file
from nanoclaw_app.runtime.base import ContainerRuntime, SessionSpec
from nanoclaw_app.runtime.wake import WakeManager
from nanoclaw_app.secrets.backend import PASSPHRASE_ENV, choose_backend
from nanoclaw_app.secrets.store import SecretStore, SecretsUnavailable
from nanoclaw_app.services import chat as chat_service
from nanoclaw_app.services.auth import WebAuth
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.services.engine_check import stop_image_build
from nanoclaw_app.services.key_gate import KeyGate
from nanoclaw_app.services.voice_notes import VoiceNotes
from nanoclaw_app.serving import WebServer
from nanoclaw_app.session_specs import SessionSpecs
from nanoclaw_app.sessions.store import SessionStore
from nanoclaw_app.settings import Settings
from nanoclaw_app.stop_steps import StopSteps
from nanoclaw_app.web.app import web_servers

log = logging.getLogger(__name__)

HOUSEKEEPING_SECONDS = 30.0
ENGINE_RETRY_SECONDS = (2.0, 5.0, 10.0, 20.0, *(30.0,) * 118)
"""Pauses between attempts to reach an unavailable container engine: about an hour, then the next start's turn."""
QUIET_POLL_SECONDS = 30.0


class Host:
    """One running NanoClaw: database, sessions, channels, router, delivery, sweep, containers and the web UI."""

    def __init__(
        self,
        settings: Settings,
        *,
        runtime: ContainerRuntime | None = None,
        adapters: Sequence[ChannelAdapter] = (),
        serve_web: bool = True,
        secrets: SecretStore | None = None,
        channel_builders: Mapping[str, BuildFn] | None = None,
    ) -> None:
        """Build every part; nothing starts until :meth:`start`.

        ``adapters`` run in addition to the channels the user turned on; ``channel_builders`` replaces how a phone
        channel is built (tests hand in adapters over fake platform clients).
        """
        self.settings = settings
        self.state = HostState()
        self.db = Database(settings.paths.central_db)
        self.store = SessionStore(settings.paths.sessions)
        self.events = EventBus()
        self.channels = ChannelRegistry()
        for adapter in adapters:
            self.channels.add(adapter)
        if "webchat" not in self.channels:
            # The in-app chat is always on; the chat service reaches it as ``ctx.channels.get("webchat")``.
            self.channels.add(WebchatAdapter(self.db, self.events, settings.paths.home / "webchat", store=self.store))
        self._choose_secrets = secrets is None
        self.secrets = secrets or SecretStore(None, unavailable_reason="the secret store is not open yet")
        self.gateway = ModelGateway(
            settings=settings, db=self.db, secrets=self.secrets, events=self.events,
            on_cap_reached=self._on_spend_cap,
        )
        # Every container's only way out: its own proxy listener, answered by the decisions below.
        self.egress_decisions = EgressDecisions(db=self.db, secrets=self.secrets,
                                                approval_seconds=lambda: self.settings.egress_approval_seconds,
                                                events=self.events)
        self.egress = EgressServer(
            self.egress_decisions, ca_folder=settings.paths.home / "egress", run_dir=settings.paths.run,
            transport=self.gateway.transport,
            exceptions=tuple(e.strip() for e in settings.egress_private_exceptions.split(",") if e.strip()),
            extra_ca_file=settings.agent_ca_certificates, upstream_ca_file=settings.egress_trusted_ca_file,
            network_proxy=network_proxy(),
        )
        self.runtime: ContainerRuntime = runtime or self._default_runtime()
        self.waker = WakeManager(
            self.db,
            self.runtime,
            prepare=self._prepare,
            max_running=settings.max_concurrent_containers,
            is_idle=idle_check(self.db, self.store),
            idle_stop_seconds=settings.idle_stop_seconds,
            events=self.events,
            standby_at_start=settings.container_standby,
        )
        self.ctx = CoreContext(
            settings=settings, db=self.db, store=self.store, channels=self.channels, waker=self.waker,
            events=self.events,
        )
        # Every wake of the core passes the turn budget, which pauses a session that runs away (any loop, any cause).
        self.ctx.waker = TurnBudget(self.ctx, self.waker, is_queued=self.waker.is_queued)
        self.approvals = ApprovalService(self.ctx)
        self.egress_decisions.use_approvals(self.approvals)
        # Inbound interceptors, in order: a pairing code binds a chat first; then a reply naming a new agent.
        self.router = Router(self.ctx, self.approvals,
                             interceptors=(partial(pairing.intercept, self.ctx), self.approvals.intercept))
        self.ctx.route = self._route
        self.actions = SystemActions(self.ctx, request_approval=self.approvals.request_approval)
        register_approval_handlers(self.approvals)
        # On Linux the containers share our kernel, so file events from their bind mounts are reliable and the poll
        # is only a slow safety net; elsewhere (a Podman VM) it is the fast path when events get lost.
        self.delivery = Delivery(
            self.ctx, actions=self.actions, on_failure=self._on_delivery_failure,
            quiet_poll_seconds=QUIET_POLL_SECONDS if sys.platform.startswith("linux") else None,
        )
        self.sweep = Sweep(self.ctx, interval=settings.sweep_interval_seconds)
        self.key_gate = KeyGate(self.secrets, settings.paths, lambda: build_upstreams(self.settings),
                                lambda text: notify_owner(self.ctx, text), self.events)
        self.specs = SessionSpecs(self.ctx, lambda: self.settings, self.key_gate,
                                  uses_model_keys=self.runtime.uses_model_keys)
        self.due = DueTimer(self.ctx)
        self.ctx.due = self.due
        self.typing = TypingKeeper(self.ctx)
        self.ctx.typing = self.typing
        self.voice_notes = VoiceNotes(self.gateway, lambda: self.settings, self.events)
        self.ctx.transcriber = self.voice_notes
        self.watcher = OutboundWatcher(settings.paths.sessions, self._on_outbound_change)
        self.callbacks = HostEvents(self.ctx, self.router, self.approvals,
                                    on_channel_up=self.delivery.resume_channel, on_component=self._component)
        self._builders: dict[str, BuildFn] = {m.name: m.build for m in channel_registry.CHANNELS}
        self._builders.update(channel_builders or {})
        self._channel_lock = asyncio.Lock()
        self.auth = WebAuth(self.db)
        self.services = AppServices(
            ctx=self.ctx, secrets=self.secrets, approvals=self.approvals, auth=self.auth, state=self.state,
            gateway=self.gateway, runtime=self.runtime, reload_settings=self._reload_settings, channels=self,
        )
        self.voice_notes.shown = partial(chat_service.show_transcripts, self.services)
        # With HTTPS for LAN access, ``lan_web`` serves other devices and ``web`` stays on 127.0.0.1 (plain HTTP).
        self.web: WebServer | None = None
        self.lan_web: WebServer | None = None
        if serve_web:
            self.web, self.lan_web = web_servers(self.services)
        self._stack: StopSteps | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._engine: asyncio.Task[None] | None = None
        self._release: asyncio.Task[None] | None = None
        self._engine_tried = asyncio.Event()  # set once a connection attempt has failed

    # ------------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start every component in dependency order; on failure, stop what already started."""
        stack = StopSteps()
        try:
            self.settings.paths.ensure()
            # The engine connects (starting Podman's service can take a second) while the rest comes up: the
            # window and the web app do not wait for it; every container start does (``ContainerRuntime.open``).
            stack.step("the container engine", self.runtime.close)
            self._component("containers", "connecting")
            self._engine = asyncio.create_task(self._connect_engine(), name="engine-connect")
            stack.step("the engine connection", self._stop_engine_connect)
            await self.db.open()
            stack.step("the database", self.db.close)
            applied = await migrate(self.db)
            if applied:
                log.info("database migrated: %s", ", ".join(applied))
            await self.store.start()
            stack.step("the session store", self.store.close)
            self._component("database", "ok")
            await self.auth.load()

            if self._choose_secrets:
                passphrase = os.environ.pop(PASSPHRASE_ENV, None) or None  # popped: no child process inherits it
                backend, reason = await asyncio.to_thread(choose_backend, self.settings.paths, passphrase)
                self.secrets.set_backend(backend, reason)
                if backend is None:
                    log.warning("secrets: %s", reason)
            self._component("secrets",
                            "ok" if self.secrets.available else f"locked: {self.secrets.unavailable_reason}")
            await self.gateway.start()
            stack.step("the model gateway", self.gateway.stop)
            self._component("gateway", self.gateway.transport)
            self.egress_decisions.start()
            stack.step("the egress decisions", self.egress_decisions.stop)
            await self.egress.start()
            stack.step("the egress proxy", self.egress.stop)
            self._component("egress", self.gateway.transport)

            await self.waker.start()
            stack.step("the agent containers", self.waker.stop_all)
            # a connect still under way ends before stop_all
            stack.step("the engine connection", self._stop_engine_connect)

            await self.approvals.sweep_stale_on_start()
            # Channels come up before recovery and the sweep: both may need to tell the owner something.
            stack.step("the channels", self._teardown_channels)
            for adapter in self.channels.all():
                await self._setup_adapter(adapter)
            await self._start_enabled_channels()
            await self.delivery.recover_uncertain()
            await self.delivery.start()
            stack.step("delivery", self.delivery.stop)
            stack.step("typing", self.typing.stop)
            await self.watcher.start()
            stack.step("the outbound watcher", self.watcher.stop)
            await self.due.start()
            stack.step("the due timer", self.due.stop)
            await self.sweep.start()
            stack.step("the sweep", self.sweep.stop)
            await self.router.start()  # messages a session DB refused earlier are handed over from here on
            stack.step("the router", self.router.stop)
            self._housekeeping = asyncio.create_task(self._housekeeping_loop(), name="housekeeping")
            stack.step("housekeeping", self._stop_housekeeping)
            self._release = asyncio.create_task(self._release_when_keys_usable(), name="key-release")
            stack.step("the key release", self._stop_release)

            if self.web is not None:
                await self.web.start()
                stack.step("the web app", self._stop_web)
                if self.lan_web is not None:
                    await self._start_lan_web(self.lan_web)
                self._component("web", self.url or "")
                write_run_file(self.settings.paths, self.url or "", self.state.run)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        self.state.ready = True
        log.info("NanoClaw host ready")

    async def _start_lan_web(self, server: WebServer) -> None:
        """Serve other devices; if that fails (say, the port is taken), the window and the phone chats still work."""
        try:
            await server.start()
        except Exception as err:
            log.error("could not open LAN access (HTTPS): %s", err)
            self._component("lan", f"unavailable: {err}")
            self.lan_web = None

    async def _start_enabled_channels(self) -> None:
        """Start each channel the user turned on that does not run (at start; again once the secrets unlock)."""
        for name in self._builders:
            if name not in self.channels and await channel_registry.is_enabled(self.db, name):
                try:
                    await self.start_channel(name)
                except NanoClawError as err:
                    if isinstance(err, SecretsUnavailable):  # its token is in the locked store: it starts at the unlock
                        log.warning("channel %s waits for the secret store to be unlocked: %s", name, err)
                        self._component(f"channel:{name}", "locked: starts when your saved keys are unlocked")
                        continue
                    log.error("channel %s not started: %s", name, err)
                    self._component(f"channel:{name}", f"failed: {err}")

    async def _release_when_keys_usable(self) -> None:
        """When the store is unlocked or a key saved, go on with what waited for it.

        Channels whose token is in the store (Telegram) start now, and the messages that waited for a model key go
        to their agents; messages sent to a channel meanwhile wait on the platform's side and arrive now.
        """
        async with self.events.subscribe() as queue:
            while True:
                event = await queue.get()
                unlocked = event.kind == "health" and event.data.get("components", {}).get("secrets") == "ok"
                saved = event.kind == "secrets.changed" and event.data.get("is_set")
                try:
                    if unlocked:
                        await self._start_enabled_channels()
                    if (unlocked or saved) and self.key_gate.release():
                        await self.sweep.sweep_once()
                except Exception:
                    log.exception("going on after the secrets became usable failed; the sweep retries")

    async def _stop_release(self) -> None:
        task, self._release = self._release, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _connect_engine(self) -> None:
        """Connect the runtime, and keep trying while it is unavailable (a machine booting, Podman being installed).

        Meanwhile the app runs and says what is wrong; messages stay pending, and the sweep hands them over once a
        start succeeds. The first failure is an error in the log, repeats of the same one are not.
        """
        said = ""
        for delay in (*ENGINE_RETRY_SECONDS, None):
            try:
                await self.runtime.open()
            except NanoClawError as err:
                if str(err) != said:
                    log.error("container engine unavailable: %s", err)
                    said = str(err)
                self._component("containers", f"unavailable: {err}")
                if delay is None:
                    return
                self._engine_tried.set()
                await asyncio.sleep(delay)
                continue
            if said:
                log.info("container engine connected after all")
            self._component("containers", self.runtime.name)
            return

    async def engine_connected(self) -> None:
        """Wait until the start's engine connection succeeded or first failed (see ``state.components``)."""
        task = self._engine
        if task is None:
            return
        tried = asyncio.ensure_future(self._engine_tried.wait())
        try:
            await asyncio.wait([task, tried], return_when=asyncio.FIRST_COMPLETED)
        finally:
            tried.cancel()

    async def _stop_engine_connect(self) -> None:
        task = self._engine
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def stop(self) -> None:
        """Stop everything in reverse order (idempotent)."""
        self.state.ready = False
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
            log.info("NanoClaw host stopped")

    async def __aenter__(self) -> Host:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def web_port(self) -> int | None:
        """The bound web port (after start)."""
        return None if self.web is None else self.web.port

    @property
    def url(self) -> str | None:
        """The app's address on this machine (after start); loopback even when LAN access binds every interface."""
        if self.web_port is None:
            return None
        host = self.settings.host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding it
            host = "127.0.0.1"
        return f"http://{host}:{self.web_port}/"

    async def _stop_web(self) -> None:
        self.services.closing.set()  # open event streams end, so the server can exit
        await stop_image_build(self.services)  # the setup wizard's image build, if one runs
        remove_run_file(self.settings.paths)
        for server in (self.lan_web, self.web):
            if server is not None:
                await server.stop()

    # ------------------------------------------------------------------------------------------ channels

    async def start_channel(self, name: str) -> ChannelAdapter:
        """Build and connect a phone channel now (after setup in the app); returns the running adapter."""
        async with self._channel_lock:
            running = self.channels.get(name)
            if running is not None:
                return running
            build = self._builders.get(name)
            if build is None:
                raise ConfigError(f"there is no channel called {name!r}")
            deps = ChannelDeps(settings=self.settings, db=self.db, events=self.events, secrets=self.secrets,
                               store=self.store)
            adapter = await build(deps)
            if adapter is None:
                raise ConfigError(f"{name} is not set up yet; set it up on the Channels page")
            self.channels.add(adapter)
            await self._setup_adapter(adapter)
            return adapter

    async def stop_channel(self, name: str) -> None:
        """Disconnect a channel and stop using it (sends to it wait until it runs again)."""
        async with self._channel_lock:
            adapter = self.channels.remove(name)
            if adapter is None:
                return
            try:
                await adapter.teardown()
            finally:
                await self.callbacks.on_status(name, ChannelStatus("stopped", "turned off"))

    async def _setup_adapter(self, adapter: ChannelAdapter) -> None:
        """Connect one adapter; a failure is shown and logged, and the host runs on without that channel."""
        try:
            await adapter.setup(self.callbacks)
        except Exception as err:
            log.exception("channel %s failed to start", adapter.channel_type)
            self.channels.remove(adapter.channel_type)
            with contextlib.suppress(Exception):
                await adapter.teardown()
            self._component(f"channel:{adapter.channel_type}", f"failed: {err}")
            raise ConfigError(f"{adapter.channel_type} could not start: {err}") from err
        self._component(f"channel:{adapter.channel_type}", adapter.status().state)

    async def _teardown_channels(self) -> None:
        for adapter in reversed(self.channels.all()):
            try:
                await adapter.teardown()
            except Exception:
                log.exception("channel %s did not stop cleanly", adapter.channel_type)

    # ------------------------------------------------------------------------------------------ wiring

    def _component(self, name: str, status: str) -> None:
        self.state.components[name] = status
        self.events.publish("health", components={name: status})

    async def _reload_settings(self, settings: Settings) -> None:
        """Settings changed on disk: swap them in for the parts that read them per use (timezone, spend cap, ...).

        A running channel whose own settings changed (its settings object) is reconnected with them.
        """
        previous, self.settings = self.settings, settings
        self.ctx.settings = settings
        self.gateway.apply_settings(settings)
        for name in [a.channel_type for a in self.channels.all()]:
            manifest = channel_registry.manifest(name)
            kind = manifest.settings if manifest is not None else None
            if kind is not None and previous.channel(kind) != settings.channel(kind):
                log.info("%s settings changed; reconnecting it", name)
                await self.stop_channel(name)
                try:
                    await self.start_channel(name)
                except NanoClawError as err:
                    log.error("channel %s did not come back after a settings change: %s", name, err)
        log.info("settings reloaded")

    def _default_runtime(self) -> ContainerRuntime:
        """The engine named by settings: Podman for users, a plain subprocess for development."""
        if self.settings.runtime == "local":
            from nanoclaw_app.runtime.local import LocalRuntime

            return LocalRuntime(pid_dir=self.settings.paths.container_logs, gateway=self.gateway)
        from nanoclaw_app.runtime.podman_runtime import PodmanRuntime

        return PodmanRuntime(self.settings, gateway=self.gateway, egress=self.egress, events=self.events,
                             notice=self._notice)

    async def _notice(self, session_id: str, text: str) -> None:
        """A note for a session whose container is starting right now (waking it again would wait on itself)."""
        await write_system_note(self.ctx, session_id, text, wake=False)

    async def _on_spend_cap(self, text: str) -> None:
        if not await notify_owner(self.ctx, text):
            log.error("could not tell anyone that the daily spend cap was reached: %s", text)

    async def _route(self, message: object) -> None:
        from nanoclaw_app.core.messages import InboundMessage

        assert isinstance(message, InboundMessage)
        await self.router.route(message)

    async def _prepare(self, session: Session) -> SessionSpec:
        return await self.specs.build(session)

    async def _on_outbound_change(self, session_id: str) -> None:
        """The runner wrote: deliver what is due."""
        await self.delivery.deliver_session(session_id)

    async def _on_delivery_failure(self, session: Session, text: str) -> None:
        """A reply could not be delivered: tell the owner over any channel that works."""
        if not await notify_owner(self.ctx, text):
            log.error("could not tell anyone that a reply failed in session %s: %s", session.id, text)

    async def _housekeeping_loop(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            try:
                await self.approvals.expire_due()
            except Exception:
                log.exception("approval expiry failed; will retry")
            try:
                await egress_events.purge_old(self.db)
            except Exception:
                log.exception("forgetting old internet activity failed; will retry")

    async def _stop_housekeeping(self) -> None:
        task, self._housekeeping = self._housekeeping, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def network_proxy() -> str:
    """The network's own proxy from this process's environment (what pip and Podman use here too), or ``""``."""
    return urllib.request.getproxies().get("https", "")
