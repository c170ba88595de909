"""The composition root: builds the host from settings, starts components in order and stops them in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from types import TracebackType

from nanoclaw_app.channels.base import ChannelAdapter, ChannelRegistry
from nanoclaw_app.core.approvals.service import ApprovalService
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.delivery import Delivery
from nanoclaw_app.core.events import EventBus
from nanoclaw_app.core.host_callbacks import HostEvents
from nanoclaw_app.core.notify import notify_owner
from nanoclaw_app.core.projection import project
from nanoclaw_app.core.router import Router
from nanoclaw_app.core.sweep import Sweep, idle_check
from nanoclaw_app.core.system_actions import SystemActions, apply_add_mcp_server, apply_install_packages
from nanoclaw_app.core.usage import ingest as ingest_usage
from nanoclaw_app.core.watcher import OutboundWatcher
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.migrate import migrate
from nanoclaw_app.db.rows import Session
from nanoclaw_app.runtime.base import ContainerRuntime, SessionSpec
from nanoclaw_app.runtime.unavailable import UnavailableRuntime
from nanoclaw_app.runtime.wake import WakeManager
from nanoclaw_app.sessions.store import SessionStore
from nanoclaw_app.settings import Settings
from nanoclaw_app.web.app import create_app
from nanoclaw_app.web.server import WebServer
from nanoclaw_app.web.state import HostState

log = logging.getLogger(__name__)

HOUSEKEEPING_SECONDS = 30.0


class Host:
    """One running NanoClaw: database, sessions, channels, router, delivery, sweep, containers and the web UI."""

    def __init__(
        self,
        settings: Settings,
        *,
        runtime: ContainerRuntime | None = None,
        adapters: Sequence[ChannelAdapter] = (),
        serve_web: bool = True,
    ) -> None:
        self.settings = settings
        self.state = HostState()
        self.db = Database(settings.paths.central_db)
        self.store = SessionStore(settings.paths.sessions)
        self.events = EventBus()
        self.channels = ChannelRegistry()
        for adapter in adapters:
            self.channels.add(adapter)
        self.runtime: ContainerRuntime = runtime or UnavailableRuntime(
            "no container engine is set up yet (Podman support arrives with the container runtime)"
        )
        self.waker = WakeManager(
            self.db,
            self.runtime,
            prepare=self._prepare,
            max_running=settings.max_concurrent_containers,
            is_idle=idle_check(self.db, self.store),
            idle_stop_seconds=settings.idle_stop_seconds,
            events=self.events,
        )
        self.ctx = CoreContext(
            settings=settings, db=self.db, store=self.store, channels=self.channels, waker=self.waker,
            events=self.events,
        )
        self.approvals = ApprovalService(self.ctx)
        self.router = Router(self.ctx, self.approvals)
        self.ctx.route = self._route
        self.actions = SystemActions(self.ctx, request_approval=self.approvals.request_approval)
        self.approvals.register_handler("install_packages", apply_install_packages)
        self.approvals.register_handler("add_mcp_server", apply_add_mcp_server)
        self.delivery = Delivery(self.ctx, actions=self.actions, on_failure=self._on_delivery_failure)
        self.sweep = Sweep(self.ctx, interval=settings.sweep_interval_seconds)
        self.watcher = OutboundWatcher(settings.paths.sessions, self._on_outbound_change)
        self.callbacks = HostEvents(self.ctx, self.router, self.approvals)
        self.web: WebServer | None = (
            WebServer(create_app(self.state), settings.host, settings.port) if serve_web else None
        )
        self._stack: AsyncExitStack | None = None
        self._housekeeping: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start every component in dependency order; on failure, stop what already started."""
        stack = AsyncExitStack()
        try:
            self.settings.paths.ensure()
            await self.db.open()
            stack.push_async_callback(self.db.close)
            applied = await migrate(self.db)
            if applied:
                log.info("database migrated: %s", ", ".join(applied))
            await self.store.start()
            stack.push_async_callback(self.store.close)
            self._component("database", "ok")

            removed = await self.runtime.remove_orphans()
            if removed:
                log.info("removed %d orphan containers from an earlier run", removed)
            await self.waker.start()
            stack.push_async_callback(self.waker.stop_all)
            self._component("containers", self.runtime.name)

            await self.approvals.sweep_stale_on_start()
            # Channels come up before recovery and the sweep: both may need to tell the owner something.
            for adapter in self.channels.all():
                await adapter.setup(self.callbacks)
                stack.push_async_callback(adapter.teardown)
                self._component(f"channel:{adapter.channel_type}", "connected" if adapter.is_connected() else "down")
            await self.delivery.recover_uncertain()
            await self.delivery.start()
            stack.push_async_callback(self.delivery.stop)
            await self.watcher.start()
            stack.push_async_callback(self.watcher.stop)
            await self.sweep.start()
            stack.push_async_callback(self.sweep.stop)
            self._housekeeping = asyncio.create_task(self._housekeeping_loop(), name="housekeeping")
            stack.push_async_callback(self._stop_housekeeping)

            if self.web is not None:
                await self.web.start()
                stack.push_async_callback(self.web.stop)
                self._component("web", f"http://{self.settings.host}:{self.web.port}/")
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        self.state.ready = True
        log.info("NanoClaw host ready")

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

    # ------------------------------------------------------------------------------------------ wiring

    def _component(self, name: str, status: str) -> None:
        self.state.components[name] = status

    async def _route(self, message: object) -> None:
        from nanoclaw_app.core.messages import InboundMessage

        assert isinstance(message, InboundMessage)
        await self.router.route(message)

    async def _prepare(self, session: Session) -> SessionSpec:
        """Before a container starts: project destinations and routing, and say what to run."""
        await project(self.ctx, session)
        agent = await agents_db.get(self.db, session.agent_group_id)
        config = await agents_db.get_config(self.db, session.agent_group_id)
        folder = agent.folder if agent is not None else session.agent_group_id
        agent_dir = self.settings.paths.agents / folder
        agent_dir.mkdir(parents=True, exist_ok=True)
        return SessionSpec(
            session_id=session.id,
            agent_group_id=session.agent_group_id,
            session_dir=self.store.dir(session.agent_group_id, session.id),
            agent_dir=agent_dir,
            provider=session.agent_provider or (config.provider if config else "claude"),
            model=config.model if config else None,
            env={
                "NANOCLAW_TZ_NAME": self.settings.timezone,
                "NANOCLAW_ASSISTANT_NAME": (config.assistant_name if config else None)
                or (agent.name if agent else "Nano"),
                "NANOCLAW_MAX_MESSAGES_PER_PROMPT": str(
                    (config.max_messages_per_prompt if config else None) or self.settings.max_messages_per_prompt
                ),
            },
        )

    async def _on_outbound_change(self, session_id: str) -> None:
        """The runner wrote: deliver what is due, then copy its token usage."""
        await self.delivery.deliver_session(session_id)
        session = await sessions_db.get(self.db, session_id)
        if session is None:
            return
        try:
            await ingest_usage(self.ctx, session)
        except Exception:
            log.exception("could not record token usage of session %s", session_id)

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

    async def _stop_housekeeping(self) -> None:
        task, self._housekeeping = self._housekeeping, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
