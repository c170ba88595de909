"""Messages a session database refused for a moment: kept in the central database, handed over once it accepts.

The container can hold its ``inbound.db`` locked as long as it likes, and a busy disk or a session being repaired
can make a write fail for a while. Such a message is never dropped: the router holds it here (the in-app chat shows
it as waiting) and :class:`HeldMessages` tries again with backoff, per session in arrival order, under the message's
own id (the session write is idempotent by that id, so a retry whose earlier try did land never doubles it).

What can never succeed is given up at once and recorded as a drop; an error of a kind not known here is retried
:data:`MAX_UNKNOWN_TRIES` times, a session that stays locked for :data:`MAX_HOLD_SECONDS`; then the message is
recorded as dropped and the owner told.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Literal

from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.db import held as held_db
from nanoclaw_app.db.held import HeldMessage
from nanoclaw_app.db.rows import Session
from nanoclaw_app.errors import AuthError, ConfigError, TransientError, UserError
from nanoclaw_app.timeutil import later_iso, now_iso, parse_utc, utcnow

log = logging.getLogger(__name__)

MAX_DELAY_SECONDS = 60.0
"""Backoff cap: a session that frees up is reached within a minute."""
MAX_UNKNOWN_TRIES = 8
MAX_HOLD_SECONDS = 24 * 3600.0
IDLE_RECHECK_SECONDS = 300.0
"""How long the retry task sleeps when it cannot read when the next message is due."""

Kind = Literal["transient", "unknown", "permanent"]
Deliver = Callable[[HeldMessage, InboundMessage], Awaitable[None]]
"""Write a held message into its session and wake it; raises when the session still refuses it."""
GiveUp = Callable[[HeldMessage, InboundMessage, str, str], Awaitable[None]]
"""``give_up(held, message, reason, detail)``: record the drop and tell the owner."""


def classify(err: BaseException) -> Kind:
    """Whether a failed session write may succeed later.

    ``transient``: a lock or busy database, a file error, an engine hiccup (retried until :data:`MAX_HOLD_SECONDS`).
    ``permanent``: the message itself is refused (bad content, our own constraint); retrying cannot help.
    ``unknown``: anything else, e.g. a session database found damaged and being set aside (retried a few times).
    """
    if isinstance(err, sqlite3.OperationalError):
        text = str(err).lower()
        return "transient" if "locked" in text or "busy" in text else "unknown"
    if isinstance(err, OSError | TransientError):
        return "transient"
    if isinstance(err, UserError | ConfigError | AuthError | ValueError | TypeError | sqlite3.IntegrityError
                  | sqlite3.ProgrammingError):
        return "permanent"
    return "unknown"


def describe(err: BaseException) -> str:
    """The error as recorded with the held message or its drop."""
    return f"{type(err).__name__}: {err}"


class HeldMessages:
    """Holds messages per session and retries them in one owned task (started and stopped with the router)."""

    def __init__(self, ctx: CoreContext, *, deliver: Deliver, give_up: GiveUp) -> None:
        self._ctx = ctx
        self._deliver = deliver
        self._give_up = give_up
        self._counts: dict[str, int] = {}
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def waiting_in(self, session_id: str) -> bool:
        """Whether earlier messages of the session wait: a new one must queue behind them to keep the order."""
        return self._counts.get(session_id, 0) > 0

    async def hold(
        self, msg: InboundMessage, session: Session, *, user_id: str | None, trigger: bool,
        error: BaseException | None,
    ) -> None:
        """Keep ``msg`` for ``session`` (``error`` is why the write failed; None when it queues behind another)."""
        detail = None if error is None else describe(error)
        delay = 0.0 if error is None else self._delay(0)
        added = await held_db.hold(
            self._ctx.db, session_id=session.id, agent_group_id=session.agent_group_id,
            channel_type=msg.channel_type, platform_id=msg.platform_id, message_id=msg.message_id, user_id=user_id,
            trigger=trigger, message=msg.to_json(), error=detail, next_attempt_at=later_iso(delay),
        )
        if added:
            self._counts[session.id] = self._counts.get(session.id, 0) + 1
        log.warning("session %s could not take message %s from %s chat %s now (%s); holding it and trying again",
                    session.id, msg.message_id, msg.channel_type, msg.platform_id,
                    detail or "an earlier message waits")
        self._ctx.events.publish("message.held", message_id=msg.message_id, channel_type=msg.channel_type,
                                 platform_id=msg.platform_id, session_id=session.id,
                                 agent_group_id=session.agent_group_id, error=detail)
        self._kick.set()

    # ------------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Count what an earlier run left held and start retrying (idempotent)."""
        if self._task is not None:
            return
        self._counts = await held_db.counts(self._ctx.db)
        if self._counts:
            log.info("%d held message(s) from an earlier run will be handed to their sessions",
                     sum(self._counts.values()))
        self._task = asyncio.create_task(self._run(), name="held-messages")

    async def stop(self) -> None:
        """Stop retrying; what is still held stays in the database for the next start."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            self._kick.clear()
            try:
                await self.retry_due()
                wait = await self._until_next()
            except Exception:
                log.exception("retrying held messages failed; trying again later")
                wait = MAX_DELAY_SECONDS
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._kick.wait()

    async def _until_next(self) -> float:
        due = await held_db.next_due(self._ctx.db)
        if due is None:
            return IDLE_RECHECK_SECONDS
        try:
            return max(0.0, (parse_utc(due) - utcnow()).total_seconds())
        except ValueError:
            return 0.0

    # ------------------------------------------------------------------------------------------ retrying

    async def retry_due(self) -> int:
        """Try every session whose oldest held message is due; returns how many messages reached their session."""
        blocked: set[str] = set()
        handed = 0
        for held in await held_db.due(self._ctx.db, now_iso()):
            if held.session_id in blocked:
                continue  # behind a message that still waits: never overtake it
            outcome = await self._attempt(held)
            if outcome == "waiting":
                blocked.add(held.session_id)
            elif outcome == "handed":
                handed += 1
        return handed

    async def _attempt(self, held: HeldMessage) -> Literal["handed", "waiting", "dropped"]:
        try:
            msg = InboundMessage.from_json(held.message)
        except (ValueError, KeyError, TypeError) as err:  # nothing to retry; recorded as a drop all the same
            bare = InboundMessage(channel_type=held.channel_type, platform_id=held.platform_id,
                                  message_id=held.message_id, sender_id=held.user_id or "", text="")
            return await self._failed(held, bare, ValueError(f"the held message is unreadable: {describe(err)}"))
        try:
            await self._deliver(held, msg)
        except Exception as err:
            return await self._failed(held, msg, err)
        log.info("held message %s reached session %s after %d retr%s", held.message_id, held.session_id,
                 held.attempts + 1, "y" if held.attempts == 0 else "ies")
        await self._release(held, "routed")
        return "handed"

    async def _failed(
        self, held: HeldMessage, msg: InboundMessage, err: Exception
    ) -> Literal["waiting", "dropped"]:
        kind = classify(err)
        tries = held.attempts + 1
        detail = describe(err)
        try:
            age = (utcnow() - parse_utc(held.created_at)).total_seconds()
        except ValueError:
            age = MAX_HOLD_SECONDS
        if kind == "permanent" or (kind == "unknown" and tries >= MAX_UNKNOWN_TRIES) or age >= MAX_HOLD_SECONDS:
            reason = "session_unavailable" if kind == "transient" else "route_error"
            log.error("giving up on held message %s for session %s after %d tr%s: %s", held.message_id,
                      held.session_id, tries, "y" if tries == 1 else "ies", detail)
            try:
                await self._give_up(held, msg, reason, detail)
            finally:
                await self._release(held, "dropped")
            return "dropped"
        if kind == "unknown":
            log.warning("held message %s for session %s failed with an unexpected error (try %d of %d)",
                        held.message_id, held.session_id, tries, MAX_UNKNOWN_TRIES, exc_info=err)
        else:
            log.info("session %s still cannot take message %s (%s); trying again later", held.session_id,
                     held.message_id, detail)
        await held_db.retry_later(self._ctx.db, held.id, attempts=tries, error=detail,
                                  next_attempt_at=later_iso(self._delay(tries)))
        return "waiting"

    async def _release(self, held: HeldMessage, outcome: str) -> None:
        await held_db.release(self._ctx.db, held.id)
        left = self._counts.get(held.session_id, 1) - 1
        if left > 0:
            self._counts[held.session_id] = left
        else:
            self._counts.pop(held.session_id, None)
        self._ctx.events.publish("message.unheld", message_id=held.message_id, channel_type=held.channel_type,
                                 platform_id=held.platform_id, session_id=held.session_id,
                                 agent_group_id=held.agent_group_id, outcome=outcome)

    def _delay(self, tries: int) -> float:
        """Seconds before the next try: the claim retry base, doubling, capped."""
        base = max(0.01, self._ctx.settings.retry_base_seconds)
        return float(min(MAX_DELAY_SECONDS, base * 2 ** min(tries, 16)))
