"""Runs the WhatsApp link: one neonize client at a time, its events through the decision table, reconnects.

neonize specifics handled here (libraries §1):

* every handler is registered before ``connect()``: neonize tells the Go side which events to deliver when it
  connects, and a handler registered later never fires;
* neonize posts events to one process-global loop (``neonize.aioze.events.event_global_loop``), set only by the
  first ``connect()`` of the process; it is pointed at the running loop before each connect, so a restarted channel
  (or a second loop in the same process) still gets its events;
* a failed dial gets no automatic retry from neonize, so this class retries with backoff itself; a fresh client is
  built for each attempt, and the old one is stopped first (``stop()`` cancels the Go side, which lets the blocking
  connect call and its worker thread end);
* nothing is called on a client after it was stopped: the Go side forgets it, and a call then would crash.

Each client gets a generation number; events of a client that was replaced are ignored. Transitions run under one
lock, so two events arriving together (a stream error and the disconnect after it) are decided one after the other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import tzinfo
from pathlib import Path
from typing import Any, Protocol

from nanoclaw_app.channels.whatsapp import native
from nanoclaw_app.channels.whatsapp.decisions import (
    BACKOFF,
    OUTAGE_ALERT_AFTER,
    STABLE_AFTER,
    Decision,
    LinkEvent,
    decide,
    outage_alert,
)
from nanoclaw_app.channels.whatsapp.jids import Me
from nanoclaw_app.core.adapter_contract import LinkState
from nanoclaw_app.timeutil import iso, utcnow

log = logging.getLogger(__name__)

ClientFactory = Callable[[str], Any]
"""Builds a neonize ``NewAClient``-like object for a device-database path."""

QR_TIMEOUT = 75.0
"""Seconds without a new QR code after which pairing counts as expired (WhatsApp rotates them every 20–60 s)."""
STOP_TIMEOUT = 10.0
"""Seconds a stopping client gets to end its connect task."""


class LinkListener(Protocol):
    """What the connection tells the adapter."""

    async def on_link(self, state: LinkState, detail: str, retry_at: str | None, alert: str | None) -> None:
        """The link's state changed (``alert`` set when the owner must hear about it)."""

    async def on_qr(self, data: str | None) -> None:
        """A new QR code to show, or None when the shown one is no longer valid."""

    async def on_identity(self, me: Me | None) -> None:
        """Who this device is, once known; None after it was unlinked."""

    async def on_message(self, event: Any) -> None:
        """A neonize ``MessageEv``."""


_LINK_EVENTS = (
    "PairStatusEv", "ConnectedEv", "DisconnectedEv", "LoggedOutEv", "StreamReplacedEv", "StreamErrorEv",
    "TemporaryBanEv", "ConnectFailureEv", "ClientOutdatedEv", "KeepAliveTimeoutEv", "KeepAliveRestoredEv",
)


def link_event(event: Any) -> LinkEvent | None:
    """A neonize connection event in the decision table's words (None for event types that are not about the link)."""
    if isinstance(event, native.PairStatusEv):
        if event.Status == native.PairStatus.SUCCESS:
            return LinkEvent("pair_success", error=str(event.ID.User or ""))
        return LinkEvent("pair_error", error=str(event.Error or ""))
    if isinstance(event, native.ConnectedEv):
        return LinkEvent("connected")
    if isinstance(event, native.KeepAliveRestoredEv):
        return LinkEvent("keepalive_restored")
    if isinstance(event, native.DisconnectedEv):
        return LinkEvent("disconnected")
    if isinstance(event, native.StreamErrorEv):
        return LinkEvent("stream_error", code=str(event.Code or ""))
    if isinstance(event, native.KeepAliveTimeoutEv):
        return LinkEvent("keepalive_timeout")
    if isinstance(event, native.LoggedOutEv):
        return LinkEvent("logged_out", reason=native.enum_name(native.ConnectFailureReason, event.Reason))
    if isinstance(event, native.ConnectFailureEv):
        return LinkEvent("connect_failure", reason=native.enum_name(native.ConnectFailureReason, event.Reason),
                         error=str(event.Message or ""))
    if isinstance(event, native.TemporaryBanEv):
        return LinkEvent("temporary_ban", reason=native.enum_name(native.TemporaryBan.TempBanReason, event.Code),
                         expire_seconds=int(event.Expire or 0))
    if isinstance(event, native.StreamReplacedEv):
        return LinkEvent("stream_replaced")
    if isinstance(event, native.ClientOutdatedEv):
        return LinkEvent("client_outdated")
    return None


class Connection:
    """The link's state machine at work; the adapter reads ``state``, ``client``, ``me`` and ``qr_seen``."""

    def __init__(
        self,
        *,
        client_factory: ClientFactory,
        device_db: Path,
        listener: LinkListener,
        tz: tzinfo,
        paired: bool,
        backoff: Sequence[float] = BACKOFF,
        stable_after: float = STABLE_AFTER,
        outage_alert_after: float = OUTAGE_ALERT_AFTER,
        qr_timeout: float = QR_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``paired`` says whether a link is believed to exist (the first event corrects it)."""
        self._factory = client_factory
        self._device_db = device_db
        self._listener = listener
        self._tz = tz
        self._backoff = tuple(backoff)
        self._stable_after = stable_after
        self._outage_alert_after = outage_alert_after
        self._qr_timeout = qr_timeout
        self._stop_timeout = stop_timeout
        self._clock = clock
        self.paired = paired
        self.state: LinkState = "connecting" if paired else "not_paired"
        self.detail = "Connecting to WhatsApp…" if paired else "Not linked yet. Waiting for a QR code from WhatsApp…"
        self.retry_at: str | None = None
        self.problem = ""
        """``unreachable`` while WhatsApp's servers cannot be reached (see ``Decision.problem``)."""
        self.technical = ""
        """neonize's error text behind ``problem``, for the page's "Technical details"."""
        self.me: Me | None = None
        self.client: Any | None = None
        self.qr_seen = False
        """The current client's websocket is up (a QR code arrived): a phone-number code may be requested."""
        self.delays: list[float] = []
        """Every reconnect delay chosen, in order (the log and tests read it)."""
        self.launches = 0
        self._gen = 0
        self._attempt = 0
        self._task: asyncio.Future[Any] | None = None
        self._timer: asyncio.Task[None] | None = None
        self._qr_watch: asyncio.Task[None] | None = None
        self._outage_watch: asyncio.Task[None] | None = None
        self._connected_since: float | None = None
        self._qr_showing = False
        self._stopping = False
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def connected(self) -> bool:
        """Whether sends can go out now."""
        return self.state == "connected" and self.client is not None

    # ------------------------------------------------------------------------------------------ lifecycle

    def prime(self, me: Me | None) -> None:
        """Before :meth:`start`: the account a stored link belongs to (None: no link is known)."""
        self.me = me
        self.paired = me is not None
        fresh = self._fresh_state()
        self.state, self.detail = fresh.state, fresh.detail

    async def start(self) -> None:
        """Open the first connection (returns once neonize is dialing; the outcome arrives as events)."""
        async with self._lock:
            await self._launch()

    async def stop(self) -> None:
        """Stop the client and every timer (idempotent)."""
        if self._stopping:
            return
        self._stopping = True
        for task in (self._timer, self._qr_watch, self._outage_watch):
            if task is not None:
                task.cancel()
        async with self._lock:
            await self._stop_client()
        pending = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def reconnect(self) -> None:
        """Connect again now (the user pressed Reconnect): the backoff starts over."""
        async with self._lock:
            if self._stopping:
                return
            self._cancel(self._timer)
            self._attempt = 0
            await self._stop_client()
            await self._set(self._fresh_state())
            await self._launch()

    async def unlink(self) -> None:
        """Log out on WhatsApp's side (when reachable), forget the device and start a fresh pairing."""
        async with self._lock:
            if self._stopping:
                return
            client = self.client
            if client is not None and self.connected:
                try:
                    await client.logout()
                except native.NeonizeError as err:
                    log.warning("WhatsApp logout failed (the device is forgotten here anyway): %s", err)
            self._cancel(self._timer)
            self._cancel(self._outage_watch)
            self._attempt = 0
            await self._stop_client()
            await self._forget_device()
            await self._set(Decision("not_paired", "Unlinked. Scan the new QR code to link WhatsApp again."))
            await self._launch()

    # ------------------------------------------------------------------------------------------ clients

    async def _launch(self) -> None:
        """Build a client, register every handler, point neonize at this loop, connect (lock held)."""
        self._gen += 1
        gen = self._gen
        self.qr_seen = False
        self.launches += 1
        try:
            client = self._factory(str(self._device_db))
            self._register(client, gen)
            # neonize posts events to a process-global loop that only its first connect() ever sets.
            native.events_module.event_global_loop = asyncio.get_running_loop()
            self.client = client
            task = await client.connect()
        except Exception as err:
            log.warning("WhatsApp could not start connecting: %s", err)
            self._spawn(self._handle(gen, LinkEvent("dial_failed", error=str(err))))
            return
        self._task = task
        task.add_done_callback(lambda done: self._connect_ended(gen, done))

    def _register(self, client: Any, gen: int) -> None:
        """Every handler, before connect: handlers added later would never be called."""

        async def on_qr(_client: Any, data: bytes) -> None:
            await self._guard(self._on_qr(gen, data.decode(errors="replace") if isinstance(data, bytes) else str(data)))

        async def on_link(_client: Any, event: Any) -> None:
            translated = link_event(event)
            if translated is not None:
                await self._guard(self._handle(gen, translated))

        async def on_message(_client: Any, event: Any) -> None:
            # Even from a client being replaced: WhatsApp counts a delivered message as received, so none is dropped.
            if not self._stopping:
                await self._guard(self._listener.on_message(event))

        client.event.qr(on_qr)
        for name in _LINK_EVENTS:
            client.event(getattr(native, name))(on_link)
        client.event(native.MessageEv)(on_message)

    async def _stop_client(self) -> None:
        """Stop the current client and wait for its connect task (lock held); its later events are ignored."""
        self._gen += 1
        client, task = self.client, self._task
        self.client = None
        self._task = None
        self.qr_seen = False
        if client is None:
            return
        try:
            await asyncio.wait_for(client.stop(), self._stop_timeout)
        except Exception as err:
            log.warning("stopping the WhatsApp client failed: %s", err)
        if task is not None and not task.done():
            done, _ = await asyncio.wait({task}, timeout=self._stop_timeout)
            if not done:
                log.warning("the WhatsApp client did not stop within %.0f s; abandoning it", self._stop_timeout)
                task.cancel()

    def _connect_ended(self, gen: int, task: asyncio.Future[Any]) -> None:
        """Neonize's connect task returned: a failed dial (it never retries those) or an unexplained end."""
        error = None if task.cancelled() else task.exception()
        if self._stopping or gen != self._gen:
            return
        event = LinkEvent("dial_failed", error=str(error)) if error is not None else LinkEvent("ended")
        if error is not None:
            log.info("WhatsApp connection attempt failed: %s", error)
        self._spawn(self._handle(gen, event))

    async def _forget_device(self) -> None:
        """Delete the device database (after the client stopped), so the next client pairs afresh."""
        self.paired = False
        self.me = None
        for suffix in ("", "-wal", "-shm", "-journal"):
            path = self._device_db.with_name(self._device_db.name + suffix)
            try:
                path.unlink(missing_ok=True)
            except OSError as err:
                log.warning("could not delete %s: %s", path, err)
        await self._listener.on_identity(None)

    # ------------------------------------------------------------------------------------------ events

    async def _on_qr(self, gen: int, data: str) -> None:
        async with self._lock:
            if gen != self._gen or self._stopping:
                return
            self.qr_seen = True
            if self.paired:
                log.info("WhatsApp asks to pair: the stored link is gone")
                self.paired = False
                self.me = None
                await self._listener.on_identity(None)
            self._qr_showing = True
            await self._listener.on_qr(data)
            await self._set(self._decide(LinkEvent("qr")))
            self._cancel(self._qr_watch)
            self._qr_watch = self._spawn(self._expire_qr(gen))

    async def _handle(self, gen: int, event: LinkEvent) -> None:
        async with self._lock:
            if gen != self._gen or self._stopping:
                return
            if event.kind == "pair_success":
                await self._paired(event.error)
            elif event.kind in ("connected", "keepalive_restored"):
                await self._connected(event)
            else:
                await self._down(event)

    async def _paired(self, number: str) -> None:
        self.paired = True
        self._attempt = 0
        self._cancel(self._qr_watch)
        await self._clear_qr()
        if number:
            self.me = Me(number=number, lid=self.me.lid if self.me and self.me.number == number else None)
            await self._listener.on_identity(self.me)
        await self._set(self._decide(LinkEvent("pair_success")))

    async def _connected(self, event: LinkEvent) -> None:
        if event.kind == "keepalive_restored" and self.state == "connected":
            return
        for task in (self._timer, self._qr_watch, self._outage_watch):
            self._cancel(task)
        self.paired = True
        self._connected_since = self._clock()
        self.qr_seen = True
        await self._clear_qr()
        me = await self._identity()
        if me is not None and me != self.me:
            self.me = me
            await self._listener.on_identity(me)
        await self._set(self._decide(event))

    async def _down(self, event: LinkEvent) -> None:
        if event.kind == "pair_expired" and self.state != "pairing":
            return
        if self._connected_since is not None and self._clock() - self._connected_since >= self._stable_after:
            self._attempt = 0
        was_up = self.state == "connected"
        decision = self._decide(event)
        if decision.transient and self._timer is not None and not self._timer.done():
            log.debug("WhatsApp %s while a reconnect is already planned", event.kind)
            return
        self._cancel(self._timer)
        self._connected_since = None
        if decision.counts_attempt:
            self._attempt += 1
        if decision.stop_client:
            self._cancel(self._qr_watch)
            await self._stop_client()
        if decision.repair:
            await self._forget_device()
        if decision.state != "pairing":
            await self._clear_qr()
        await self._set(decision)
        if decision.state in ("reconnecting", "connecting"):
            if was_up and self.paired:
                self._outage_watch = self._spawn(self._watch_outage(self._clock()))
        else:
            self._cancel(self._outage_watch)
        if decision.reconnect_after is not None:
            self.delays.append(decision.reconnect_after)
            self._timer = self._spawn(self._reconnect_after(decision.reconnect_after))

    # ------------------------------------------------------------------------------------------ timers

    async def _reconnect_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        async with self._lock:
            if self._stopping or self.connected:
                return
            self._timer = None
            await self._stop_client()
            await self._launch()

    async def _expire_qr(self, gen: int) -> None:
        await asyncio.sleep(self._qr_timeout)
        await self._handle(gen, LinkEvent("pair_expired"))

    async def _watch_outage(self, since: float) -> None:
        await asyncio.sleep(self._outage_alert_after)
        async with self._lock:
            if self._stopping or self.state not in ("reconnecting", "connecting"):
                return
            await self._listener.on_link(self.state, self.detail, self.retry_at,
                                         outage_alert(self._clock() - since))

    # ------------------------------------------------------------------------------------------ helpers

    def _decide(self, event: LinkEvent) -> Decision:
        return decide(event, attempt=self._attempt, paired=self.paired, now=utcnow(), tz=self._tz,
                      backoff=self._backoff)

    def _fresh_state(self) -> Decision:
        if self.paired:
            return Decision("connecting", "Connecting to WhatsApp…")
        return Decision("not_paired", "Not linked yet. Waiting for a QR code from WhatsApp…")

    async def _set(self, decision: Decision) -> None:
        """Adopt a decision's state and tell the listener when anything the user sees changed."""
        retry_at = iso(decision.retry_at) if decision.retry_at is not None else None
        seen = (decision.state, decision.detail, retry_at, decision.problem, decision.technical)
        changed = seen != (self.state, self.detail, self.retry_at, self.problem, self.technical)
        self.state, self.detail, self.retry_at = decision.state, decision.detail, retry_at
        self.problem, self.technical = decision.problem, decision.technical
        if changed or decision.alert:
            if changed:
                log.info("WhatsApp: %s (%s)", self.state, self.detail)
            await self._listener.on_link(self.state, self.detail, self.retry_at, decision.alert)

    async def _clear_qr(self) -> None:
        if self._qr_showing:
            self._qr_showing = False
            await self._listener.on_qr(None)

    async def _identity(self) -> Me | None:
        """Our own number and alias from neonize (falls back to what pairing told us)."""
        client = self.client
        if client is None:
            return self.me
        try:
            device = await client.get_me()
        except Exception as err:
            log.warning("could not read WhatsApp's own account: %s", err)
            return self.me
        number = str(device.JID.User or "")
        if not number:
            return self.me
        lid = str(device.LID.User or "") or None
        return Me(number=number, lid=lid)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @staticmethod
    def _cancel(task: asyncio.Task[None] | None) -> None:
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _guard(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a handler; neonize drops whatever a handler raises, so failures are logged here."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("handling a WhatsApp event failed")

