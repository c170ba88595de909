"""The wake manager: at most one container per session, at most ``max_running`` containers in all.

Routing, notes and the sweep call :meth:`WakeManager.wake` whenever a session has new work. Concurrent wakes of one
session share one start (an in-flight map), so a burst of messages never double-spawns. When the global cap is
reached, sessions wait in a FIFO queue; a container that has nothing left to do (``is_idle``: no claims and no due
rows) is stopped to make room, so every waiting session gets its turn even though agents keep their containers open for
follow-ups. A failed start is logged and published, leaves the message pending and returns False: the sweep retries.

A runtime that can prepare containers ahead (``StandbyRuntime``, Podman) gets a standby for each session stopped for
being idle, and at start for the sessions active in the last day: their next message then starts in a fraction of the
time. Every other stop (the session's folders are repaired, its agent deleted, its settings changed) drops it.

The runtime reports every exit through its ``on_exit`` callback; that frees the slot, records the session as stopped
and starts the next queued session. A runtime should report a requested stop before its ``stop()`` returns (the
in-process and Podman runtimes do); a report about a container the runtime still calls running is ignored as stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.errors import WaitingForUser
from nanoclaw_app.runtime.base import STANDBY_MAX_AGE_SECONDS, ContainerRuntime, SessionSpec, StandbyRuntime
from nanoclaw_app.sessions.store import SessionStore
from nanoclaw_app.timeutil import iso, utcnow

if TYPE_CHECKING:
    from nanoclaw_app.core.events import EventBus
    from nanoclaw_app.db.database import Database
    from nanoclaw_app.db.rows import Session

log = logging.getLogger(__name__)

IdleCheck = Callable[[str], Awaitable[bool]]
"""Async ``session_id -> True`` when the session's container has nothing to do (no claims, no due rows)."""


class WakeManager:
    """Implements the core's ``Waker``: deduplicated starts, a global cap with a queue, idle preemption and stop."""

    def __init__(
        self,
        ctx_db: Database,
        runtime: ContainerRuntime,
        *,
        prepare: Callable[[Session], Awaitable[SessionSpec]],
        max_running: int,
        is_idle: IdleCheck | None = None,
        idle_stop_seconds: float | None = None,
        events: EventBus | None = None,
        check_interval: float = 0.5,
        stop_grace_seconds: float = 5.0,
        standby_at_start: int = 0,
    ) -> None:
        if max_running < 1:
            raise ValueError("max_running must be at least 1")
        self._db = ctx_db
        self._runtime = runtime
        self._prepare = prepare
        self._max = max_running
        self._is_idle = is_idle
        self._idle_stop = idle_stop_seconds
        self._events = events
        self._check_interval = check_interval
        self._grace = stop_grace_seconds
        self._standby = runtime if isinstance(runtime, StandbyRuntime) else None
        self._standby_at_start = standby_at_start
        self._slots: set[str] = set()
        """Sessions holding a slot: starting or running (and stopping, until the exit is reported)."""
        self._starting: dict[str, asyncio.Task[bool]] = {}
        self._stopping: set[str] = set()
        self._exited_while_starting: set[str] = set()
        self._respawn: dict[str, Session] = {}
        """Sessions woken while their container was stopping: started again first thing after the exit."""
        self._queue: OrderedDict[str, Session] = OrderedDict()
        self._busy_at: dict[str, float] = {}
        self._generation: dict[str, int] = {}
        """Bumped on every start of a session, so a check that awaited cannot free a newer container's slot."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._kick = asyncio.Event()
        self._timer: asyncio.Task[None] | None = None
        self._closing = False
        if idle_stop_seconds is not None and is_idle is None:
            log.warning("idle_stop_seconds is set but no is_idle check was given; idle containers are not stopped")
        runtime.on_exit(self._on_exit)

    # ------------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the one housekeeping task (queue preemption and idle stop)."""
        self._closing = False
        if self._timer is None:
            self._timer = asyncio.create_task(self._housekeeping(), name="wake-housekeeping")
            if self._standby is not None and self._standby_at_start > 0:
                self._own(asyncio.create_task(self._standby_for_recent(), name="wake-standby-recent"))

    async def stop_all(self) -> None:
        """Stop every container on shutdown; no new starts after this. Owned tasks are awaited."""
        self._closing = True
        self._queue.clear()
        self._respawn.clear()
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        await asyncio.gather(*list(self._starting.values()), return_exceptions=True)
        results = await asyncio.gather(
            *(self.stop(sid, reason="host shutting down") for sid in list(self._slots)), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                log.error("stopping a container at shutdown failed: %r", result)
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------------------------------------ Waker protocol

    async def wake(self, session: Session) -> bool:
        """Make sure a container runs for the session; never raises. False leaves the work pending for the sweep."""
        if self._closing:
            log.info("not waking session %s: the host is shutting down", session.id)
            return False
        try:
            return await self._wake(session)
        except Exception as err:
            log.exception("waking session %s failed", session.id)
            self._publish("container.start_failed", session_id=session.id, error=str(err))
            return False

    def is_queued(self, session_id: str) -> bool:
        """Whether the session waits for a free container slot."""
        return session_id in self._queue

    async def is_running(self, session_id: str) -> bool:
        """True while a container for the session is starting, running or stopping.

        A container the runtime no longer knows although no exit was reported is treated as exited here, so the
        sweep's crash recovery converges even if an exit report was lost.
        """
        if session_id in self._starting or session_id in self._stopping:
            return True
        if session_id not in self._slots:
            return False
        generation = self._generation.get(session_id)
        alive = await self._alive(session_id)
        if not alive and self._generation.get(session_id) == generation and session_id in self._slots:
            log.warning("container of session %s is gone without an exit report", session_id)
            self._exited(session_id, None, requested=False)
            await self._set_status(session_id, "stopped")
        return alive

    async def stop(self, session_id: str, *, reason: str, standby: bool = False) -> None:
        """Stop the session's container (a queued wake is dropped; the sweep resets unfinished claims).

        With ``standby`` (an idle stop) the session's next container is prepared once this one is gone; otherwise a
        prepared one is dropped.
        """
        self._queue.pop(session_id, None)
        if self._standby is not None:
            try:
                await self._standby.discard_standby(session_id)
            except Exception:
                log.exception("dropping the standby container of session %s failed", session_id)
        starting = self._starting.get(session_id)
        if starting is not None:
            await asyncio.shield(starting)
        if session_id not in self._slots or session_id in self._stopping:
            return
        self._stopping.add(session_id)
        generation = self._generation.get(session_id)
        log.info("stopping the container of session %s: %s", session_id, reason)
        self._publish("container.stopping", session_id=session_id, reason=reason)
        try:
            await self._runtime.stop(session_id, grace_seconds=self._grace)
        except Exception:
            log.exception("stopping the container of session %s failed", session_id)
        finally:
            self._stopping.discard(session_id)
        # Normally the exit was reported during runtime.stop(); if not, and the runtime says it is gone, free the slot
        # ourselves, unless a respawn has meanwhile started a new container for the session.
        unchanged = session_id in self._slots and self._generation.get(session_id) == generation
        if unchanged and not await self._alive(session_id) and self._generation.get(session_id) == generation:
            self._exited(session_id, None, requested=True)
            await self._set_status(session_id, "stopped")
        if standby and self._standby is not None and not self._closing:
            self._own(asyncio.create_task(self._make_standby(session_id), name=f"wake-standby-{session_id}"))

    # ------------------------------------------------------------------------------------------ introspection

    def running_count(self) -> int:
        """Slots in use: containers starting, running or stopping."""
        return len(self._slots)

    def queued(self) -> list[str]:
        """Session ids waiting for a slot, first in line first."""
        return list(self._queue)

    # ------------------------------------------------------------------------------------------ internals

    async def _wake(self, session: Session) -> bool:
        sid = session.id
        if sid in self._stopping:
            self._respawn[sid] = session
            return True
        starting = self._starting.get(sid)
        if starting is not None:
            return await asyncio.shield(starting)
        if sid in self._slots:
            self._busy_at[sid] = time.monotonic()
            await self._runtime.notify(sid)
            return True
        if sid in self._queue:
            self._queue[sid] = session
            return True
        if len(self._slots) >= self._max:
            self._queue[sid] = session
            log.info("session %s waits for a container slot (%d running, %d queued)",
                     sid, len(self._slots), len(self._queue))
            self._publish("container.queued", session_id=sid, position=len(self._queue))
            self._kick.set()
            return True
        return await asyncio.shield(self._launch(session))

    def _launch(self, session: Session) -> asyncio.Task[bool]:
        """Reserve a slot and start in an owned task (synchronously, so no second wake can slip in)."""
        sid = session.id
        self._slots.add(sid)
        self._generation[sid] = self._generation.get(sid, 0) + 1
        task = asyncio.create_task(self._start(session), name=f"wake-start-{sid}")
        self._starting[sid] = task
        self._own(task)
        return task

    async def _start(self, session: Session) -> bool:
        sid = session.id
        try:
            ok = await self._try_start(session)
        except BaseException:
            self._starting.pop(sid, None)
            self._exited_while_starting.discard(sid)
            self._free(sid)
            self._drain()
            raise
        self._starting.pop(sid, None)
        if sid in self._exited_while_starting:
            self._exited_while_starting.discard(sid)
            if ok and not await self._alive(sid):
                log.warning("container of session %s exited while starting", sid)
                self._publish("container.exited", session_id=sid, exit_code=None, requested=False)
                ok = False
        if ok and sid in self._slots:
            self._busy_at[sid] = time.monotonic()
            await self._set_status(sid, "running")
            self._publish("container.started", session_id=sid)
            self._kick.set()
            return True
        if sid in self._slots:
            self._free(sid)
            await self._set_status(sid, "stopped")
            self._drain()
        return False

    async def _try_start(self, session: Session) -> bool:
        try:
            spec = await self._prepare(session)
            SessionStore.clear_heartbeat(spec.session_dir)
            await self._set_status(session.id, "starting")
            await self._runtime.start(spec)
        except WaitingForUser as err:  # said to the owner already; retried once the user acted
            log.info("session %s waits for the user: %s", session.id, err)
            self._publish("container.waiting", session_id=session.id, reason=str(err))
            return False
        except Exception as err:
            log.warning("starting a container for session %s failed (the message stays pending): %s",
                        session.id, err, exc_info=True)
            self._publish("container.start_failed", session_id=session.id, error=str(err))
            return False
        log.info("container of session %s started (%d of %d slots in use)", session.id, len(self._slots), self._max)
        return True

    async def _on_exit(self, session_id: str, code: int | None) -> None:
        """Exit report from the runtime (any reason): free the slot and let the next session in."""
        try:
            if session_id in self._starting:
                self._exited_while_starting.add(session_id)
                return
            if session_id not in self._slots:
                log.debug("exit of session %s that holds no slot (code %s)", session_id, code)
                return
            if session_id not in self._stopping and await self._alive(session_id):
                log.debug("ignoring a stale exit report for session %s", session_id)
                return
            self._exited(session_id, code, requested=session_id in self._stopping)
            await self._set_status(session_id, "stopped")
        except Exception:
            log.exception("handling the exit of session %s failed", session_id)

    def _exited(self, session_id: str, code: int | None, *, requested: bool) -> None:
        """Free the slot (idempotent), put a pending respawn first in line, start what fits."""
        if session_id not in self._slots:
            return
        self._free(session_id)
        if requested or code == 0:
            log.info("container of session %s exited (code %s)", session_id, code)
        else:
            log.warning("container of session %s died (code %s); the sweep will retry its messages",
                        session_id, code)
        self._publish("container.exited", session_id=session_id, exit_code=code, requested=requested)
        respawn = self._respawn.pop(session_id, None)
        if respawn is not None and not self._closing:
            self._queue[session_id] = respawn
            self._queue.move_to_end(session_id, last=False)
        self._drain()

    def _free(self, session_id: str) -> None:
        self._slots.discard(session_id)
        self._busy_at.pop(session_id, None)

    async def _make_standby(self, session_id: str) -> None:
        """Prepare the session's next container, unless it was woken (or closed) meanwhile; failures only cost speed."""
        if self._standby is None or session_id in self._slots or self._closing:
            return
        try:
            session = await sessions_db.get(self._db, session_id)
            if session is None or session.status != "active" or session_id in self._slots:
                return
            await self._standby.prepare_standby(await self._prepare(session))
        except Exception as err:
            log.warning("could not prepare a standby container for session %s: %s", session_id, err)

    async def _standby_for_recent(self) -> None:
        """At start: standbys for the sessions active in the last day, most recent first."""
        since = iso(utcnow() - timedelta(seconds=STANDBY_MAX_AGE_SECONDS))
        try:
            recent = await sessions_db.list_recently_active(self._db, since, self._standby_at_start)
        except Exception:
            log.exception("could not list recently active sessions for standby containers")
            return
        for session in recent:
            await self._make_standby(session.id)

    async def _alive(self, session_id: str) -> bool:
        try:
            return await self._runtime.is_running(session_id)
        except Exception:
            log.exception("cannot tell whether the container of session %s runs; assuming it does", session_id)
            return True

    def _drain(self) -> None:
        """Start queued sessions while slots are free."""
        while not self._closing and self._queue and len(self._slots) < self._max:
            sid, session = self._queue.popitem(last=False)
            if sid in self._slots:
                continue
            self._launch(session)

    async def _housekeeping(self) -> None:
        """One timer for all sessions: make room for queued sessions and stop long-idle containers."""
        while True:
            delay = self._next_check()
            if delay is None:
                await self._kick.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._kick.wait()
            self._kick.clear()
            try:
                await self._check_idle()
            except Exception:
                log.exception("idle check of running containers failed")

    def _next_check(self) -> float | None:
        if self._is_idle is None or not (self._slots.difference(self._starting)):
            return None
        if self._queue:
            return self._check_interval
        if self._idle_stop is not None:
            return max(0.01, min(self._idle_stop / 2, 30.0))
        return None

    async def _check_idle(self) -> None:
        if self._is_idle is None or (not self._queue and self._idle_stop is None):
            return
        now = time.monotonic()
        idle: list[tuple[float, str]] = []
        for sid in [s for s in self._slots if s not in self._starting and s not in self._stopping]:
            try:
                is_idle = await self._is_idle(sid)
            except Exception:
                log.exception("idle check of session %s failed", sid)
                continue
            if is_idle:
                idle.append((self._busy_at.get(sid, now), sid))
            else:
                self._busy_at[sid] = now
        idle.sort()
        victims: dict[str, tuple[float, str]] = {}
        shortfall = len(self._queue) - (self._max - len(self._slots))
        for since, sid in idle[: max(0, shortfall)]:
            victims[sid] = (since, f"idle, making room for {len(self._queue)} waiting session(s)")
        if self._idle_stop is not None:
            for since, sid in idle:
                if sid not in victims and now - since >= self._idle_stop:
                    victims[sid] = (since, f"idle for {now - since:.0f}s")
        stops = [
            # Stopped for being idle, it is likely to be woken again; one making room is not.
            self.stop(sid, reason=reason, standby=not reason.startswith("idle, making room"))
            for sid, (since, reason) in victims.items()
            if self._busy_at.get(sid, now) == since  # not woken since the check
        ]
        if stops:
            await asyncio.gather(*stops)

    async def _set_status(self, session_id: str, status: str) -> None:
        try:
            await sessions_db.set_container_status(self._db, session_id, status)
        except Exception:
            log.exception("recording container status %r for session %s failed", status, session_id)

    def _publish(self, kind: str, **data: Any) -> None:
        if self._events is not None:
            self._events.publish(kind, **data)

    def _own(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


__all__ = ["IdleCheck", "WakeManager"]
