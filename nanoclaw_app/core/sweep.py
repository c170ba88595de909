"""The sweep: treats the session DBs as the source of truth, so every crash, lost event or failed spawn converges.

Every ``interval`` seconds (and once at start), for each active session:

1. sync acks: a ``completed`` ack completes its inbound row, a ``failed`` ack fails it (the original turned failures
   into completions, hiding them);
2. clone recurring tasks whose last run finished (``core.scheduling.clone_recurring``);
3. judge a running container with :func:`decide_stuck_action` and stop it when stuck;
4. after a kill or a crash (claims left and no container), reset the claimed rows with backoff or fail them after
   ``max_claim_tries``, then delete the orphan acks (the host's only write to ``outbound.db``, and only while no
   container runs);
5. wake sessions with due triggering rows and no container: this retries failed spawns and is the safety net for
   scheduled tasks, which the due timer (``core.due``) fires at their time; each session's next due time is handed to
   that timer here, so times written before a restart or by the steps above are covered too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent_runner.protocol import AckStatus, InboundStatus, MessageKind
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.notify import notify_owner
from nanoclaw_app.core.scheduling import clone_recurring
from nanoclaw_app.core.session_repair import repair_session
from nanoclaw_app.core.stuck import Claim, ToolState, decide_stuck_action
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import Session
from nanoclaw_app.errors import SessionDamaged
from nanoclaw_app.sessions.store import SessionStore
from nanoclaw_app.timeutil import iso, parse_utc

log = logging.getLogger(__name__)

@dataclass
class SweepReport:
    """What one pass did, counted over all sessions (tests and the activity page read it)."""

    sessions: int = 0
    acks_completed: int = 0
    acks_failed: int = 0
    recurring_cloned: int = 0
    killed: int = 0
    claims_retried: int = 0
    claims_failed: int = 0
    orphan_acks_deleted: int = 0
    woken: int = 0
    errors: int = 0
    failed_messages: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ResetResult:
    """Outcome of resetting a dead container's claims."""

    retried: list[str]
    failed: list[str]
    skipped: list[str]


# --------------------------------------------------------------------------------------------- per-session DB work


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return parse_utc(text).timestamp()
    except ValueError:
        log.warning("unreadable timestamp %r in a session DB", text)
        return None


def read_claims(conn: sqlite3.Connection) -> list[Claim]:
    """``processing`` acks of ``outbound.db`` (opened as main), oldest first."""
    rows = conn.execute(
        "SELECT message_id, status_changed FROM processing_ack WHERE status = ? ORDER BY status_changed",
        (AckStatus.PROCESSING.value,),
    ).fetchall()
    claims: list[Claim] = []
    for message_id, changed in rows:
        stamp = _epoch(changed)
        # An unreadable stamp counts as "claimed at the epoch": old enough to be judged, never silently ignored.
        claims.append(Claim(message_id=message_id, status_changed=0.0 if stamp is None else stamp))
    return claims


def read_tool(conn: sqlite3.Connection) -> ToolState | None:
    """The tool the container declared it is running (``container_state``), if any."""
    row = conn.execute(
        "SELECT current_tool, tool_declared_timeout_ms, tool_started_at FROM container_state WHERE id = 1"
    ).fetchone()
    if row is None or not row[0]:
        return None
    timeout = row[1] if isinstance(row[1], int) else None
    return ToolState(name=row[0], declared_timeout_ms=timeout, started_at=_epoch(row[2]))


def read_container_view(conn: sqlite3.Connection) -> tuple[list[Claim], ToolState | None]:
    """Claims and tool state in one read of ``outbound.db``."""
    return read_claims(conn), read_tool(conn)


def read_final_acks(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(message id, status) of every completed or failed ack, read from ``outbound.db`` alone."""
    rows = conn.execute(
        "SELECT message_id, status FROM processing_ack WHERE status IN (?, ?)",
        (AckStatus.COMPLETED.value, AckStatus.FAILED.value),
    ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def sync_acks(conn: sqlite3.Connection, acks: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """Copy container acks onto ``messages_in`` (inbound.db alone); returns the (completed, failed) ids changed.

    The acks are read beforehand in a separate step: holding a lock on ``outbound.db`` while committing to
    ``inbound.db`` can deadlock with a runner that does the mirror image.
    """
    completed: list[str] = []
    failed: list[str] = []
    for message_id, status in acks:
        if status == AckStatus.COMPLETED.value:
            changed = conn.execute(
                "UPDATE messages_in SET status = ? WHERE id = ? AND status IN (?, ?)",
                (InboundStatus.COMPLETED.value, message_id, InboundStatus.PENDING.value, InboundStatus.FAILED.value),
            ).rowcount
            if changed:
                completed.append(message_id)
        else:
            changed = conn.execute(
                "UPDATE messages_in SET status = ? WHERE id = ? AND status = ?",
                (InboundStatus.FAILED.value, message_id, InboundStatus.PENDING.value),
            ).rowcount
            if changed:
                failed.append(message_id)
    return completed, failed


def reset_claims(
    conn: sqlite3.Connection, message_ids: list[str], *, now: datetime, max_tries: int, base_seconds: float
) -> ResetResult:
    """Retry dead claims later (base × 2^tries) or fail them after ``max_tries``; future-scheduled rows are skipped."""
    retried: list[str] = []
    failed: list[str] = []
    skipped: list[str] = []
    for message_id in message_ids:
        row = conn.execute(
            "SELECT status, tries, process_after FROM messages_in WHERE id = ?", (message_id,)
        ).fetchone()
        if row is None or row[0] != InboundStatus.PENDING:
            skipped.append(message_id)
            continue
        tries = int(row[1] or 0)
        after = _epoch(row[2])
        if after is not None and after > now.timestamp():
            skipped.append(message_id)
            continue
        if tries < max_tries:
            retry_at = now + timedelta(seconds=base_seconds * (2**tries))
            conn.execute(
                "UPDATE messages_in SET process_after = ?, tries = ? WHERE id = ?",
                (iso(retry_at), tries + 1, message_id),
            )
            retried.append(message_id)
        else:
            conn.execute(
                "UPDATE messages_in SET status = ? WHERE id = ?", (InboundStatus.FAILED.value, message_id)
            )
            failed.append(message_id)
    return ResetResult(retried, failed, skipped)


def message_previews(conn: sqlite3.Connection, message_ids: list[str], width: int = 80) -> list[str]:
    """Short texts of inbound rows (chat text or task prompt), for telling the user which ones failed."""
    previews: list[str] = []
    for message_id in message_ids:
        row = conn.execute("SELECT content FROM messages_in WHERE id = ?", (message_id,)).fetchone()
        text = ""
        if row is not None:
            try:
                data = json.loads(row[0])
            except ValueError:
                data = None
            if isinstance(data, dict):
                text = str(data.get("text") or data.get("prompt") or "")
        text = " ".join(text.split())
        previews.append(text if len(text) <= width else text[: width - 1] + "…")
    return previews


def due_trigger_ids(conn: sqlite3.Connection, now: datetime) -> list[str]:
    """Pending rows that should wake the agent now: triggering, due, not system answers, not claimed."""
    return due_and_next(conn, now)[0]


def due_and_next(conn: sqlite3.Connection, now: datetime) -> tuple[list[str], float | None]:
    """The ids :func:`due_trigger_ids` gives, and the epoch at which the next such row falls due (None: none waits).

    One read for both, so the sweep hands every session's next due time to the due timer at no extra cost.
    """
    rows = conn.execute(
        "SELECT m.id, m.process_after FROM messages_in m"
        " WHERE m.status = ? AND m.trigger = 1 AND m.kind != ?"
        " AND NOT EXISTS (SELECT 1 FROM ob.processing_ack a WHERE a.message_id = m.id)"
        " ORDER BY m.seq",
        (InboundStatus.PENDING.value, MessageKind.SYSTEM.value),
    ).fetchall()
    due: list[str] = []
    upcoming: float | None = None
    for message_id, process_after in rows:
        after = _epoch(process_after)
        if process_after is None or (after is not None and after <= now.timestamp()):
            due.append(message_id)
        elif after is not None and (upcoming is None or after < upcoming):
            upcoming = after
    return due, upcoming


def session_is_idle(conn: sqlite3.Connection) -> bool:
    """No claims in progress and nothing due: the container may be stopped without losing work."""
    busy = conn.execute(
        "SELECT 1 FROM ob.processing_ack WHERE status = ? LIMIT 1", (AckStatus.PROCESSING.value,)
    ).fetchone()
    return busy is None and not due_trigger_ids(conn, datetime.now(UTC))


def idle_check(db: Database, store: SessionStore) -> Callable[[str], Awaitable[bool]]:
    """The ``is_idle`` callback for the wake manager, reading the session's own DBs."""

    async def is_idle(session_id: str) -> bool:
        session = await sessions_db.get(db, session_id)
        if session is None:
            return True
        folder = store.dir(session.agent_group_id, session.id)
        return await store.read(folder, session_is_idle)

    return is_idle


# --------------------------------------------------------------------------------------------- the sweep


class Sweep:
    """Runs :meth:`sweep_once` at start and then every ``interval`` seconds, in one owned task."""

    def __init__(self, ctx: CoreContext, *, interval: float) -> None:
        self._ctx = ctx
        self._interval = interval
        self._lock = asyncio.Lock()
        self._stop_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the periodic task (idempotent)."""
        if self._task is None:
            self._stop_event.clear()
            self._task = asyncio.create_task(self._run(), name="sweep")

    async def stop(self) -> None:
        """Stop promptly, letting a pass in progress finish."""
        self._stop_event.set()
        task, self._task = self._task, None
        if task is not None:
            await task

    async def _run(self) -> None:
        while not self._stop_event.is_set():
            try:
                await self.sweep_once()
            except Exception:
                log.exception("sweep pass failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._stop_event.wait()

    async def sweep_once(self) -> SweepReport:
        """One pass over every active session; a failing session is logged and does not stop the others."""
        async with self._lock:
            report = SweepReport()
            for session in await sessions_db.list_active(self._ctx.db):
                report.sessions += 1
                try:
                    await self._sweep_session(session, report)
                except FileNotFoundError as err:
                    log.warning("sweep skipped session %s: %s", session.id, err)
                    report.errors += 1
                except SessionDamaged as damage:
                    # Logged once and repaired, not logged again every pass while the session stalls.
                    report.errors += 1
                    try:
                        await repair_session(self._ctx, session, damage)
                    except Exception:
                        log.exception("could not repair damaged session %s", session.id)
                except Exception as err:
                    log.exception("sweep of session %s failed", session.id)
                    self._ctx.events.publish("sweep.failed", session_id=session.id, error=str(err))
                    report.errors += 1
            return report

    async def _sweep_session(self, session: Session, report: SweepReport) -> None:
        ctx = self._ctx
        store = ctx.store
        folder = store.dir(session.agent_group_id, session.id)

        acks = await store.read_outbound(folder, read_final_acks)
        completed, failed = await store.write(folder, lambda conn: sync_acks(conn, acks))
        report.acks_completed += len(completed)
        report.acks_failed += len(failed)
        for message_id in failed:
            log.warning("agent of session %s reported message %s as failed", session.id, message_id)
            ctx.events.publish("message.failed", session_id=session.id, message_id=message_id,
                               reason="the agent reported a failure")
        report.failed_messages.extend(failed)

        report.recurring_cloned += await self._clone(folder)

        running = await ctx.waker.is_running(session.id)
        killed = False
        if running:
            killed = await self._enforce_sla(session, folder)
            if killed:
                report.killed += 1
                running = False

        if not running:
            await self._reset_after_death(session, folder, report, after_kill=killed)

        due, upcoming = await store.read(folder, lambda conn: due_and_next(conn, datetime.now(UTC)))
        if upcoming is not None:
            ctx.note_due(session.id, upcoming)  # retries and clones written above, times from before a restart
        if due and not await ctx.waker.is_running(session.id):
            if await ctx.waker.wake(session):
                report.woken += 1
            else:
                log.info("sweep could not wake session %s; its messages stay pending", session.id)

    async def _clone(self, folder: Path) -> int:
        tz = self._ctx.settings.tz
        return await self._ctx.store.write(folder, lambda conn: clone_recurring(conn, tz))

    async def _enforce_sla(self, session: Session, folder: Path) -> bool:
        """Stop a stuck container; True when it was stopped."""
        ctx = self._ctx
        claims, tool = await ctx.store.read_outbound(folder, read_container_view)
        now = time.time()
        age = SessionStore.heartbeat_age(folder)
        decision = decide_stuck_action(
            now=now,
            heartbeat_mtime=None if age is None else now - age,
            claims=claims,
            tool=tool,
            ceiling_s=ctx.settings.heartbeat_ceiling_seconds,
            claim_stuck_s=ctx.settings.claim_stuck_seconds,
        )
        if not decision.kill:
            return False
        log.warning("container of session %s is stuck: %s; stopping it", session.id, decision.reason)
        ctx.events.publish("container.killed", session_id=session.id, reason=decision.reason)
        await ctx.waker.stop(session.id, reason=f"stuck: {decision.reason}")
        return True

    async def _reset_after_death(
        self, session: Session, folder: Path, report: SweepReport, *, after_kill: bool
    ) -> None:
        """Give the claims of a dead container back (with backoff) and remove its orphan acks."""
        ctx = self._ctx
        claims = await ctx.store.read_outbound(folder, read_claims)
        if not claims:
            return
        ids = [c.message_id for c in claims]
        settings = ctx.settings
        result: ResetResult = await ctx.store.write(
            folder,
            lambda conn: reset_claims(conn, ids, now=datetime.now(UTC), max_tries=settings.max_claim_tries,
                                      base_seconds=settings.retry_base_seconds),
        )
        cause = "was stopped" if after_kill else "died"
        if result.retried:
            log.info("container of session %s %s; retrying %d message(s) later", session.id, cause,
                     len(result.retried))
        for message_id in result.failed:
            log.warning("message %s of session %s failed after %d tries (its container %s)",
                        message_id, session.id, settings.max_claim_tries, cause)
            ctx.events.publish("message.failed", session_id=session.id, message_id=message_id,
                               reason=f"gave up after {settings.max_claim_tries} tries")
        if result.failed:
            previews = await ctx.store.read(folder, lambda conn: message_previews(conn, result.failed),
                                            with_outbound=False)
            await notify_owner(
                ctx,
                f"Your agent could not answer {len(result.failed)} message(s): its container stopped working"
                f" {settings.max_claim_tries} times while on them. " + " / ".join(f"“{p}”" for p in previews),
            )
        report.claims_retried += len(result.retried)
        report.claims_failed += len(result.failed)
        report.failed_messages.extend(result.failed)
        if await ctx.waker.is_running(session.id):
            log.info("session %s has a container again; leaving its acks to it", session.id)
            return
        report.orphan_acks_deleted += await ctx.store.delete_orphan_acks(folder, ids)


__all__ = [
    "ResetResult",
    "Sweep",
    "SweepReport",
    "due_and_next",
    "due_trigger_ids",
    "idle_check",
    "message_previews",
    "read_claims",
    "read_container_view",
    "read_final_acks",
    "read_tool",
    "reset_claims",
    "session_is_idle",
    "sync_acks",
]

