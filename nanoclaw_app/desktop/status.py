"""The assistant's state in words for the tray, and the moments worth a desktop notification.

Both come from what the host already keeps and publishes: component health (secrets, container engine, channels), the
approvals that wait, the turn budget's pauses (a paused agent waits on a ``resume_session`` approval) and the day's
spend against its cap. :class:`StatusWatcher` runs on the host's event loop and hands results to the window process
through two callbacks; it never touches the GUI itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from nanoclaw_app.channels import registry
from nanoclaw_app.core.events import Event
from nanoclaw_app.core.turn_budget import RESUME_ACTION
from nanoclaw_app.db import app_state
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.services.secrets import secret_status
from nanoclaw_app.web.controllers.session import WIZARD_DONE

log = logging.getLogger(__name__)

State = Literal["starting", "running", "attention", "paused"]

REFRESH_SECONDS = 60.0
"""A status also changes with the clock (a pause ends, the spend cap resets at midnight)."""



def channel_title(name: str) -> str:
    """A channel's name as the app shows it (``WhatsApp``)."""
    found = registry.manifest(name)
    return found.title if found is not None else name.title()

CHANNEL_TROUBLE = {
    "logged_out": "{name} is unlinked: link it again on the Channels page",
    "banned": "{name} refuses the account for now",
    "replaced": "{name} is in use by another program",
    "failed": "{name} could not connect",
}
SECRETS_LOCKED = "Secrets are locked: unlock them in Settings"
APPROVAL_EVENTS = frozenset({"approval.requested", "sender.approval_requested", "channel.registration_requested"})
WATCHED_EVENTS = APPROVAL_EVENTS | frozenset({
    "health", "channel.status", "gateway.cap_reached", "settings.changed", "secrets.changed", "session.paused",
    "session.resumed", "approval.decided", "approval.expired", "sender.allowed", "sender.denied", "channel.connected",
    "channel.rejected", "channel.registration_cancelled", "approvals.changed", "setup.step",
})


@dataclass(frozen=True, slots=True)
class Status:
    """One line for the tray's menu and tooltip, plus what needs the user, each in a short sentence."""

    state: State
    headline: str
    details: tuple[str, ...] = ()

    @property
    def tooltip(self) -> str:
        """The icon's hover text."""
        return "NanoClaw: " + "; ".join((self.headline, *self.details))


STARTING = Status("starting", "Starting…")


@dataclass(frozen=True, slots=True)
class Alert:
    """A desktop notification: ``cause`` keys its throttle (one per cause every few minutes)."""

    cause: str
    title: str
    body: str


async def read_status(services: AppServices) -> Status:
    """The state in words, from the running host."""
    components = dict(services.state.components)
    trouble: list[str] = []
    waiting = await _waiting_approvals(services)
    paused = sum(1 for row in await approvals_db.list_pending_approvals(services.ctx.db)
                 if row.action == RESUME_ACTION)
    asks = waiting - paused
    if asks:
        trouble.append("1 request waits for your answer" if asks == 1 else f"{asks} requests wait for your answer")
    for name, status in sorted(components.items()):
        if name.startswith("channel:"):
            channel = name.split(":", 1)[1]
            words = CHANNEL_TROUBLE.get(status.split(":", 1)[0])
            if words:
                trouble.append(words.format(name=channel_title(channel)))
    if not services.secrets.available:
        secrets = await secret_status(services)
        if secrets.locked:
            trouble.append(SECRETS_LOCKED)
        elif secrets.needs_passphrase_setup:
            trouble.append("Secrets need a passphrase: choose one in Settings")
    if components.get("containers", "").startswith("unavailable"):
        trouble.append("The container engine is not available")
    if _cap_reached(services):
        trouble.append("Today's spending limit is reached")
    if not await app_state.get(services.ctx.db, WIZARD_DONE):
        trouble.insert(0, "Setup is not finished: open NanoClaw to finish it")
    if trouble:
        return Status("attention", "Needs attention", tuple(trouble))
    if paused:
        what = "1 agent is paused" if paused == 1 else f"{paused} agents are paused"
        return Status("paused", "Paused", (f"{what} after too many turns: see Approvals",))
    if not services.state.ready:
        return STARTING
    return Status("running", "Running")


async def _waiting_approvals(services: AppServices) -> int:
    from nanoclaw_app.services import approvals

    return await approvals.count(services)


def _cap_reached(services: AppServices) -> bool:
    cap = services.ctx.settings.daily_spend_cap_usd
    gateway = services.gateway
    return bool(cap and cap > 0 and gateway is not None and gateway.spent_today_usd >= cap)


def alert_for(event: Event) -> Alert | None:
    """The notification an event deserves, if any (the user is away from the window: only what needs them)."""
    data: dict[str, Any] = event.data
    if event.kind in APPROVAL_EVENTS:
        return Alert("approval", "NanoClaw needs your answer",
                     "A request is waiting for your approval. Open NanoClaw to answer it.")
    if event.kind == "channel.status":
        channel = str(data.get("channel_type", ""))
        state = str(data.get("state", ""))
        if state in CHANNEL_TROUBLE:
            name = channel_title(channel)
            detail = str(data.get("detail") or "")
            return Alert(f"channel:{channel}:{state}", f"{name} needs attention",
                         detail or CHANNEL_TROUBLE[state].format(name=name) + ".")
    if event.kind == "gateway.cap_reached":
        return Alert("spend_cap", "Today's spending limit is reached",
                     str(data.get("message") or "Agents stop using the model until midnight."))
    return None


def alerts_at_start(status: Status) -> list[Alert]:
    """What the user must fix before anything works, told once when the app starts in the background."""
    alerts = []
    for detail in status.details:
        if detail == SECRETS_LOCKED:
            alerts.append(Alert("secrets_locked", "NanoClaw is waiting for your passphrase",
                                "Open NanoClaw and unlock your secrets in Settings; until then agents cannot work."))
        elif detail.startswith("The container engine"):
            alerts.append(Alert("engine", "NanoClaw cannot start agents",
                                "The container engine is not available. Open NanoClaw to see what to do."))
    return alerts


class StatusWatcher:
    """Follows the host's events: a new :class:`Status` when it changes, an :class:`Alert` when the user is needed.

    Owned by the window process, started and stopped on the host's loop; callbacks are called on that loop and must
    hand work to the GUI thread themselves.
    """

    def __init__(self, services: AppServices, *, on_status: Callable[[Status], None],
                 on_alert: Callable[[Alert], None], refresh_seconds: float = REFRESH_SECONDS) -> None:
        self._services = services
        self._on_status = on_status
        self._on_alert = on_alert
        self._refresh = refresh_seconds
        self._task: asyncio.Task[None] | None = None
        self._last: Status | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        """Subscribe and publish the first status before returning (no event is missed from then on)."""
        self._task = asyncio.create_task(self._run(), name="desktop-status")
        await self._ready.wait()

    async def stop(self) -> None:
        """End the watch (idempotent)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        async with self._services.ctx.events.subscribe() as queue:
            try:
                first = await self._publish()
                for alert in alerts_at_start(first):
                    self._on_alert(alert)
            finally:
                self._ready.set()
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), self._refresh)
                except TimeoutError:
                    await self._publish()
                    continue
                if event.kind not in WATCHED_EVENTS:
                    continue
                wanted = alert_for(event)
                if wanted is not None:
                    self._on_alert(wanted)
                await self._publish()

    async def _publish(self) -> Status:
        try:
            status = await read_status(self._services)
        except Exception:
            log.exception("could not read the assistant's status for the tray")
            return self._last or STARTING
        if status != self._last:
            self._last = status
            log.info("status for the tray: %s", status.tooltip)
            self._on_status(status)
        return status
