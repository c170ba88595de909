"""Scheduled tasks: ``kind="task"`` rows in a session's ``inbound.db``, grouped into series by ``series_id``.

A task is just an inbound row with a ``process_after``; every time written here is noted to the due timer
(``core.due``), which wakes the session at that moment, and the sweep's "wake sessions with due rows" is the safety net.
A recurring task keeps one live occurrence; when it completes, :func:`clone_recurring` inserts the next one with the
same ``series_id`` (the id of the first occurrence), and cancel/pause/resume/update match the id *or* the series so
the agent's remembered task id keeps reaching the live row. Cron expressions are read in the user's timezone, so
"0 9 * * *" stays 9:00 local across a DST change.

The ``sqlite3.Connection`` functions run through ``SessionStore.read/write``; the async ``*_task`` handlers are the
system actions the container asks for, and tell the agent in a system note when a request cannot be honoured.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from agent_runner.protocol import InboundStatus, MessageKind, TaskContent, TaskSeries, list_task_series
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.notes import write_system_note
from nanoclaw_app.core.projection import routing_for
from nanoclaw_app.db.rows import Session
from nanoclaw_app.errors import UserError
from nanoclaw_app.ids import new_id
from nanoclaw_app.sessions.files import check_basename
from nanoclaw_app.sessions.store import NewInbound, insert_inbound
from nanoclaw_app.timeutil import iso, now_iso, parse_utc, utcnow

log = logging.getLogger(__name__)

LIVE = (InboundStatus.PENDING.value, InboundStatus.PAUSED.value)
_LIVE_SQL = "status IN ('pending', 'paused')"
_UNSET: Any = object()


# --------------------------------------------------------------------------------------------- time


def check_cron(expr: str) -> str:
    """Return a valid five-field cron expression, else raise ``UserError`` saying why."""
    text = " ".join(str(expr).split())
    if len(text.split(" ")) != 5:
        raise UserError(
            f"recurrence {expr!r} is not a cron expression with five fields (minute hour day month weekday), "
            "e.g. '0 9 * * 1-5'"
        )
    if not croniter.is_valid(text):
        raise UserError(f"recurrence {expr!r} is not a valid cron expression")
    return text


def next_run(cron: str, after: datetime, tz: ZoneInfo) -> datetime:
    """The first time after ``after`` that ``cron`` matches, evaluated in ``tz``; returned in UTC."""
    if after.tzinfo is None:
        after = after.replace(tzinfo=UTC)
    nxt = croniter(cron, after.astimezone(tz)).get_next(datetime)
    return nxt.astimezone(UTC)


def parse_when(text: str, tz: ZoneInfo) -> datetime:
    """Parse an ISO time from the agent; a naive one is wall-clock time in the user's timezone. Returns UTC."""
    raw = str(text).strip()
    try:
        moment = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError as err:
        raise UserError(f"processAfter {text!r} is not an ISO date-time such as 2026-05-01T09:00") from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


# --------------------------------------------------------------------------------------------- DB functions


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task to insert; times are already UTC ISO strings."""

    id: str
    prompt: str
    process_after: str
    script: str | None = None
    recurrence: str | None = None
    platform_id: str | None = None
    channel_type: str | None = None
    thread_id: str | None = None


TaskSummary = TaskSeries
"""One series as ``list_tasks`` shows it (the shape is shared with the runner)."""

def schedule(conn: sqlite3.Connection, task: NewTask) -> int:
    """Insert a task row whose ``series_id`` is its own id; returns its seq (re-inserting the same id is a no-op)."""
    content = TaskContent(prompt=task.prompt, script=task.script or None)
    seq, _ = insert_inbound(conn, NewInbound(
        id=task.id,
        kind=MessageKind.TASK,
        content=content.to_json(),
        timestamp=now_iso(),
        process_after=task.process_after,
        recurrence=task.recurrence,
        series_id=task.id,
        platform_id=task.platform_id,
        channel_type=task.channel_type,
        thread_id=task.thread_id,
    ))
    return seq


def cancel(conn: sqlite3.Connection, task_id: str) -> int:
    """End the series: live rows become completed with no recurrence (so the sweep never clones them again)."""
    return conn.execute(
        f"UPDATE messages_in SET status = 'completed', recurrence = NULL WHERE kind = 'task' AND {_LIVE_SQL}"
        " AND (id = ? OR series_id = ?)",
        (task_id, task_id),
    ).rowcount


def pause(conn: sqlite3.Connection, task_id: str) -> int:
    """Hold the live occurrence; returns how many rows matched."""
    return conn.execute(
        "UPDATE messages_in SET status = 'paused' WHERE kind = 'task' AND status = 'pending'"
        " AND (id = ? OR series_id = ?)",
        (task_id, task_id),
    ).rowcount


def resume(conn: sqlite3.Connection, task_id: str) -> int:
    """Release a paused occurrence (it fires at once if its time has passed)."""
    return conn.execute(
        "UPDATE messages_in SET status = 'pending' WHERE kind = 'task' AND status = 'paused'"
        " AND (id = ? OR series_id = ?)",
        (task_id, task_id),
    ).rowcount


def update(
    conn: sqlite3.Connection,
    task_id: str,
    *,
    prompt: str | None = _UNSET,
    script: str | None = _UNSET,
    recurrence: str | None = _UNSET,
    process_after: str | None = _UNSET,
) -> int:
    """Change live rows of a series; prompt and script are merged into the content, other keys kept.

    ``script=None`` clears the script, ``recurrence=None`` makes the task one-shot; omitted fields stay.
    """
    rows = conn.execute(
        f"SELECT id, content FROM messages_in WHERE kind = 'task' AND {_LIVE_SQL} AND (id = ? OR series_id = ?)",
        (task_id, task_id),
    ).fetchall()
    for row in rows:
        try:
            data = json.loads(row["content"])
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if prompt is not _UNSET:
            data["prompt"] = prompt
        if script is not _UNSET:
            if script:
                data["script"] = script
            else:
                data.pop("script", None)
        sets = ["content = ?"]
        params: list[str | None] = [json.dumps(data, ensure_ascii=False, separators=(",", ":"))]
        if recurrence is not _UNSET:
            sets.append("recurrence = ?")
            params.append(recurrence)
        if process_after is not _UNSET:
            sets.append("process_after = ?")
            params.append(process_after)
        conn.execute(f"UPDATE messages_in SET {', '.join(sets)} WHERE id = ?", (*params, row["id"]))
    return len(rows)


def list_tasks(conn: sqlite3.Connection, status: str | None = None, *, acked: bool = False) -> list[TaskSummary]:
    """One row per series (its earliest live occurrence), soonest first; ``status`` filters pending or paused.

    ``acked``: ``outbound.db`` is attached, so a one-shot task the container finished is left out before the sync.
    """
    return list_task_series(conn, status, acked=acked)


def clone_recurring(conn: sqlite3.Connection, tz: ZoneInfo, *, now: datetime | None = None) -> int:
    """Insert the next pending occurrence of every finished recurring row, keeping its series; returns the count.

    Failed occurrences recur too (a daily task must not die because one run failed). The next time is computed from
    now (missed runs are skipped, not replayed), and the old row's recurrence is cleared so it is cloned only once.
    """
    moment = now or utcnow()
    rows = conn.execute(
        "SELECT * FROM messages_in WHERE status IN ('completed', 'failed') AND recurrence IS NOT NULL"
        " AND recurrence != '' ORDER BY seq"
    ).fetchall()
    count = 0
    for row in rows:
        after = moment
        if row["process_after"]:
            after = max(after, parse_utc(row["process_after"]))
        try:
            when = next_run(check_cron(row["recurrence"]), after, tz)
        except (UserError, ValueError, KeyError) as err:
            log.error("task %s has an unusable recurrence %r (%s); the series stops", row["id"], row["recurrence"],
                      err)
            conn.execute("UPDATE messages_in SET recurrence = NULL WHERE id = ?", (row["id"],))
            continue
        content = row["content"]
        try:
            data = json.loads(content)
            if isinstance(data, dict) and data.pop("script_output", None) is not None:
                content = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        except ValueError:
            pass
        insert_inbound(conn, NewInbound(
            id=new_id("task"),
            kind=row["kind"],
            content=content,
            timestamp=now_iso(),
            trigger=row["trigger"],
            platform_id=row["platform_id"],
            channel_type=row["channel_type"],
            thread_id=row["thread_id"],
            process_after=iso(when),
            recurrence=row["recurrence"],
            series_id=row["series_id"] or row["id"],
        ))
        conn.execute("UPDATE messages_in SET recurrence = NULL WHERE id = ?", (row["id"],))
        count += 1
    return count


# --------------------------------------------------------------------------------------------- system actions


def _task_id(payload: dict[str, Any]) -> str:
    value = payload.get("task_id", payload.get("taskId"))
    if not isinstance(value, str) or not value.strip():
        raise UserError("a task id is required")
    return value.strip()


def _text(payload: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        if key in payload and payload[key] is not None:
            value = payload[key]
            if not isinstance(value, str):
                raise UserError(f"{key} must be a string")
            return value
    return None


async def _refuse(ctx: CoreContext, session: Session, action: str, err: UserError) -> None:
    log.info("session %s: %s refused: %s", session.id, action, err)
    ctx.events.publish("task.refused", session_id=session.id, action=action, reason=str(err))
    await write_system_note(ctx, session.id, f"Your {action} request was not applied: {err}")


async def schedule_task(ctx: CoreContext, session: Session, payload: dict[str, Any]) -> str | None:
    """Apply ``schedule_task``; returns the task id, or None after telling the agent why not."""
    tz = ctx.settings.tz
    try:
        prompt = _text(payload, "prompt")
        if not prompt or not prompt.strip():
            raise UserError("a prompt is required")
        script = _text(payload, "script")
        raw_recurrence = _text(payload, "recurrence")
        recurrence = check_cron(raw_recurrence) if raw_recurrence else None
        when_text = _text(payload, "process_after", "processAfter")
        if when_text:
            when = parse_when(when_text, tz)
        elif recurrence:
            when = next_run(recurrence, utcnow(), tz)
        else:
            raise UserError("processAfter (when to run) is required for a one-shot task")
        task_id = _text(payload, "task_id", "taskId") or new_id("task")
        check_basename(task_id, "task id")
    except UserError as err:
        await _refuse(ctx, session, "schedule_task", err)
        return None
    channel_type, platform_id, thread_id = await routing_for(ctx, session)
    task = NewTask(id=task_id, prompt=prompt, process_after=iso(when), script=script or None, recurrence=recurrence,
                   platform_id=platform_id, channel_type=channel_type, thread_id=thread_id)
    folder = ctx.store.dir(session.agent_group_id, session.id)
    await ctx.store.write(folder, lambda conn: schedule(conn, task))
    ctx.note_due(session.id, when.timestamp())
    log.info("session %s: scheduled task %s at %s%s", session.id, task_id, task.process_after,
             f" repeating {recurrence!r}" if recurrence else "")
    ctx.events.publish("task.scheduled", session_id=session.id, task_id=task_id, process_after=task.process_after,
                       recurrence=recurrence)
    return task_id


async def _series_change(ctx: CoreContext, session: Session, action: str, payload: dict[str, Any]) -> int:
    try:
        task_id = _task_id(payload)
    except UserError as err:
        await _refuse(ctx, session, action, err)
        return 0
    fn = {"cancel_task": cancel, "pause_task": pause, "resume_task": resume}[action]
    folder = ctx.store.dir(session.agent_group_id, session.id)
    changed = await ctx.store.write(folder, lambda conn: fn(conn, task_id))
    if changed == 0:
        await _refuse(ctx, session, action, UserError(f"no live task matches id {task_id!r}"))
    else:
        ctx.events.publish("task.changed", session_id=session.id, action=action, task_id=task_id, rows=changed)
        if action == "resume_task":
            ctx.note_due(session.id)
    return int(changed)


async def cancel_task(ctx: CoreContext, session: Session, payload: dict[str, Any]) -> int:
    """Apply ``cancel_task`` (by task id or series id); returns the rows changed."""
    return await _series_change(ctx, session, "cancel_task", payload)


async def pause_task(ctx: CoreContext, session: Session, payload: dict[str, Any]) -> int:
    """Apply ``pause_task``; returns the rows changed."""
    return await _series_change(ctx, session, "pause_task", payload)


async def resume_task(ctx: CoreContext, session: Session, payload: dict[str, Any]) -> int:
    """Apply ``resume_task``; returns the rows changed."""
    return await _series_change(ctx, session, "resume_task", payload)


async def update_task(ctx: CoreContext, session: Session, payload: dict[str, Any]) -> int:
    """Apply ``update_task``: recurrence "" makes it one-shot, script "" clears the script; returns rows changed."""
    changes: dict[str, Any] = {}
    try:
        task_id = _task_id(payload)
        prompt = _text(payload, "prompt")
        if prompt is not None:
            if not prompt.strip():
                raise UserError("the prompt cannot be empty")
            changes["prompt"] = prompt
        script = _text(payload, "script")
        if script is not None:
            changes["script"] = script or None
        recurrence = _text(payload, "recurrence")
        if recurrence is not None:
            changes["recurrence"] = check_cron(recurrence) if recurrence.strip() else None
        when_text = _text(payload, "process_after", "processAfter")
        if when_text:
            changes["process_after"] = iso(parse_when(when_text, ctx.settings.tz))
        if not changes:
            raise UserError("nothing to change: give prompt, script, recurrence or processAfter")
    except UserError as err:
        await _refuse(ctx, session, "update_task", err)
        return 0
    folder = ctx.store.dir(session.agent_group_id, session.id)
    changed = await ctx.store.write(folder, lambda conn: update(conn, task_id, **changes))
    if changed == 0:
        await _refuse(ctx, session, "update_task", UserError(f"no live task matches id {task_id!r}"))
    else:
        ctx.events.publish("task.changed", session_id=session.id, action="update_task", task_id=task_id,
                           rows=changed)
        if "process_after" in changes:
            ctx.note_due(session.id)  # the check notes the new time (or wakes now when it has passed)
    return changed
