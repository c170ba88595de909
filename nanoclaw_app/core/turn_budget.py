"""The turn budget: a circuit breaker that stops a runaway session, whatever keeps waking it.

The per-cause rules (the hop cap between agents, refusals that do not wake, one approval card at a time) each close one
loop; this closes the ones nobody foresaw (two bots answering each other in a chat, a task that reschedules itself).
Every wake that gets the session a container is a turn. Past ``turn_budget`` turns in a sliding
``turn_window_seconds`` the session is paused: its container is stopped, new messages are still written but wake
nothing (held, never dropped), and an admin is told once, in plain words, on a card that lets the agent go on at
once. Otherwise the pause ends by itself after ``turn_pause_seconds``, when the sweep finds the held work and wakes
the session again.

The pause lives in the central DB (``session_pauses``), so a restart keeps it and the CLI can lift it; only the
sliding window is in memory.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from nanoclaw_app.core.approvals.cards import APPROVE_REJECT, options_json, send_card
from nanoclaw_app.core.approvals.picks import pick_approval_delivery, pick_approver
from nanoclaw_app.core.context import CoreContext, Waker
from nanoclaw_app.core.notify import notify_owner
from nanoclaw_app.db import agents, pauses
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.approvals import PendingApproval
from nanoclaw_app.db.rows import Session
from nanoclaw_app.errors import UserError
from nanoclaw_app.ids import new_id
from nanoclaw_app.timeutil import later_iso, now_iso, parse_utc

log = logging.getLogger(__name__)

RESUME_ACTION = "resume_session"
"""The approval that lets a paused session go on before its pause ends."""


class TurnBudget:
    """A ``Waker`` in front of the wake manager: counts turns per session and pauses a session that runs away."""

    def __init__(self, ctx: CoreContext, inner: Waker, *, is_queued: Callable[[str], bool] | None = None) -> None:
        """``is_queued`` says a session already waits for a container slot: waking it again then is no new turn."""
        self._ctx = ctx
        self._inner = inner
        self._is_queued = is_queued or (lambda _sid: False)
        self._turns: dict[str, deque[float]] = {}
        self._tripping: set[str] = set()
        """Sessions being paused right now, so concurrent wakes neither get through nor tell the owner twice."""

    async def wake(self, session: Session) -> bool:
        """Wake the session unless it is paused or this wake takes it over budget (then False: the work waits)."""
        try:
            admitted = await self._admit(session)
        except Exception:
            # A safety net that fails must not stop every agent: wake, and say so.
            log.exception("turn budget check of session %s failed; waking it anyway", session.id)
            admitted = True
        if not admitted:
            return False
        waiting = self._is_queued(session.id)
        woke = await self._inner.wake(session)
        if woke and not waiting:
            # A session waiting for a free slot is woken by the sweep again and again: those retries are no turns.
            self._turns.setdefault(session.id, deque()).append(time.monotonic())
        return woke

    async def is_running(self, session_id: str) -> bool:
        """Whether the session's container is alive."""
        return await self._inner.is_running(session_id)

    async def stop(self, session_id: str, *, reason: str) -> None:
        """Stop the session's container."""
        await self._inner.stop(session_id, reason=reason)

    async def _admit(self, session: Session) -> bool:
        sid = session.id
        if sid in self._tripping:
            return False
        pause = await pauses.get(self._ctx.db, sid)
        if sid in self._tripping:
            return False
        if pause is not None:
            if pause.resume_at > now_iso():
                log.info("session %s is paused until %s; its new work waits", sid, pause.resume_at)
                return False
            if await pauses.lift(self._ctx.db, sid):
                log.info("session %s: its pause ended; it may go on", sid)
                self._ctx.events.publish("session.resumed", session_id=sid, by="time")
        settings = self._ctx.settings
        now = time.monotonic()
        turns = self._turns.setdefault(sid, deque())
        while turns and turns[0] <= now - settings.turn_window_seconds:
            turns.popleft()
        if len(turns) >= settings.turn_budget:
            await self._trip(session, len(turns) + 1)
            return False
        return True

    async def _trip(self, session: Session, turns: int) -> None:
        sid = session.id
        self._tripping.add(sid)
        self._turns.pop(sid, None)  # a fresh window once the session goes on
        try:
            settings = self._ctx.settings
            # Stop first: the message that tipped the budget is already in the session, the next must not be taken.
            await self._inner.stop(sid, reason="over its turn budget")
            reason = f"it was woken {turns} times in {_duration(settings.turn_window_seconds)}"
            resume_at = later_iso(settings.turn_pause_seconds)
            if not await pauses.pause(self._ctx.db, sid, reason, resume_at):
                return
            log.warning("session %s paused until %s: %s (turn budget %d)", sid, resume_at, reason,
                        settings.turn_budget)
            self._ctx.events.publish("session.paused", session_id=sid, agent_group_id=session.agent_group_id,
                                     reason=reason, resume_at=resume_at)
            await tell_owner(self._ctx, session, reason, resume_at)
        finally:
            self._tripping.discard(sid)


async def is_paused(ctx: CoreContext, session_id: str) -> bool:
    """Whether the turn budget holds the session right now."""
    pause = await pauses.get(ctx.db, session_id)
    return pause is not None and pause.resume_at > now_iso()


async def tell_owner(ctx: CoreContext, session: Session, reason: str, resume_at: str) -> None:
    """One card to the closest admin (the owner, usually) that says what happened and lets the agent go on now."""
    agent = await agents.get(ctx.db, session.agent_group_id)
    name = agent.name if agent is not None else session.agent_group_id
    until = parse_utc(resume_at).astimezone(ctx.settings.tz).strftime("%H:%M")
    told = (f"{name} was paused because {reason}, which looks like it is stuck in a loop. Nothing is lost: messages "
            f"for it wait until it goes on. It goes on by itself at {until}.")
    title = f"Let {name} go on?"
    delivery = await pick_approval_delivery(ctx, await pick_approver(ctx.db, session.agent_group_id), None)
    if delivery is None:
        await notify_owner(ctx, f"{told} To let it go on sooner, open its request on the Approvals page.")
        return
    approver, dm = delivery
    approval_id = new_id("appr")
    await approvals_db.create_approval(
        ctx.db, approval_id=approval_id, session_id=None, action=RESUME_ACTION,
        payload={"session_id": session.id, "reason": reason}, agent_group_id=session.agent_group_id,
        approver_user_id=approver, channel_type=dm.channel_type, platform_id=dm.platform_id, title=title,
        options_json=options_json(APPROVE_REJECT), expires_at=resume_at,
    )
    await pauses.set_approval(ctx.db, session.id, approval_id)
    sent, message_id = await send_card(
        ctx, channel_type=dm.channel_type, platform_id=dm.platform_id, question_id=approval_id, title=title,
        question=f"{told} Approve to let it go on now, or reject to keep it paused until then.",
        options=APPROVE_REJECT,
    )
    if sent:
        await approvals_db.set_approval_message(ctx.db, approval_id, message_id)
    ctx.events.publish("approval.requested", approval_id=approval_id, action=RESUME_ACTION, approver=approver,
                       session_id=session.id, card_sent=sent)


async def apply_resume(ctx: CoreContext, approval: PendingApproval) -> str:
    """The owner let a paused session go on: lift the pause and wake it, so the held messages are answered."""
    payload: dict[str, Any] = approval.payload_dict
    session_id = payload.get("session_id")
    if not isinstance(session_id, str):
        raise UserError("the request names no session")
    lifted = await pauses.lift(ctx.db, session_id)
    session = await sessions_db.get(ctx.db, session_id)
    if session is not None:
        await ctx.waker.wake(session)
    log.info("session %s may go on (%s)", session_id, "pause lifted" if lifted else "its pause had already ended")
    ctx.events.publish("session.resumed", session_id=session_id, by=approval.decided_by)
    return "The owner let you go on after a pause for taking too many turns in a short time."


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.0f} seconds"
