"""Scheduled tasks across every session, for the tasks page and ``nanoclaw tasks``.

A task lives in its session's own ``inbound.db`` (the sweep fires it from there), so there is no central list: listing
reads each active session's DB, and a change by id first finds the session that holds the id. Only active sessions
count, because the sweep never fires a task in a closed one. Ids are series ids, the same ids the agent's own
``list_tasks`` tool shows, so the user and the agent talk about the same task.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from agent_runner.protocol import TaskSeries
from nanoclaw_app.core import scheduling
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import Session
from nanoclaw_app.errors import NotFound, SessionDamaged, UserError
from nanoclaw_app.services.activity import Directory, load_directory, local_time
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.text_safety import clean_text
from nanoclaw_app.timeutil import parse_utc, utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")

Action = Literal["pause", "resume", "cancel"]
STATUSES = ("pending", "paused")
_RESULT: dict[Action, str] = {"pause": "paused", "resume": "pending", "cancel": "cancelled"}


@dataclass
class TaskView:
    """One scheduled series as the user sees it."""

    id: str
    """The series id: what pause, resume and cancel take."""
    occurrence_id: str
    session_id: str
    agent_group_id: str
    agent_name: str
    chat: str | None
    """Where the task's answer goes (None when the agent decides)."""
    prompt: str
    has_script: bool
    schedule: str
    """``once`` or ``cron``."""
    recurrence: str | None
    next_run: str | None
    """On the user's clock, ``YYYY-MM-DD HH:MM``."""
    next_run_utc: str | None
    due: bool
    """Its time has passed: a pending one is about to fire, a paused one fires as soon as it is resumed."""
    status: str
    """``pending``, ``paused`` or (after cancel) ``cancelled``."""


@dataclass
class TaskList:
    """Every live task, soonest first, and the sessions whose tasks could not be read."""

    timezone: str
    tasks: list[TaskView]
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Found:
    series: TaskSeries
    channel_type: str | None
    platform_id: str | None
    prompt: str
    has_script: bool


async def list_tasks(services: AppServices, *, status: str | None = None) -> TaskList:
    """Live tasks of every active session; ``status`` keeps only pending or only paused ones."""
    if status is not None and status not in STATUSES:
        raise UserError(f"unknown task status {status!r}: use pending or paused")
    ctx = services.ctx
    directory = await load_directory(ctx.db)
    views: list[TaskView] = []
    problems: list[str] = []
    for session in await sessions_db.list_active(ctx.db):
        try:
            found = await _read(services, session, lambda conn: _series(conn, status, acked=True), with_outbound=True)
        except FileNotFoundError:
            log.info("tasks: session %s has no folder yet, so no tasks", session.id)
            continue
        except (sqlite3.Error, SessionDamaged) as err:
            log.warning("tasks: cannot read the tasks of session %s: %s", session.id, err)
            problems.append(f"the tasks of {directory.agent(session.agent_group_id)} (session {session.id}) "
                            f"cannot be read: {err}")
            continue
        views.extend(_view(services, directory, session, f) for f in found)
    views.sort(key=lambda v: (v.next_run_utc or "", v.agent_name, v.id))
    return TaskList(timezone=services.settings.timezone, tasks=views, problems=problems)


async def pause_task(services: AppServices, task_id: str, *, session_id: str | None = None) -> TaskView:
    """Hold a task: it does not fire until resumed (a recurring one keeps its schedule)."""
    return await _change(services, task_id, "pause", session_id)


async def resume_task(services: AppServices, task_id: str, *, session_id: str | None = None) -> TaskView:
    """Release a paused task; if its time has passed it fires at once."""
    return await _change(services, task_id, "resume", session_id)


async def cancel_task(services: AppServices, task_id: str, *, session_id: str | None = None) -> TaskView:
    """End a task for good (every future occurrence of a recurring one too); returns it as it was, ``cancelled``."""
    return await _change(services, task_id, "cancel", session_id)


# --------------------------------------------------------------------------------------------- changing one


async def _change(services: AppServices, task_id: str, action: Action, session_id: str | None) -> TaskView:
    task_id = task_id.strip()
    if not task_id:
        raise UserError("give a task id; the tasks page or `nanoclaw tasks list` shows them")
    ctx = services.ctx
    session = await _locate(services, task_id, session_id)
    before = await _one(services, session, task_id)

    def apply(conn: sqlite3.Connection) -> str | None:
        live = _statuses(conn, task_id) & set(STATUSES)
        if not live:
            return f"task {task_id} already ran or was cancelled; there is nothing left to {action}"
        if action == "pause" and "pending" not in live:
            return f"task {task_id} is already paused"
        if action == "resume" and "paused" not in live:
            return f"task {task_id} is not paused"
        fn = {"pause": scheduling.pause, "resume": scheduling.resume, "cancel": scheduling.cancel}[action]
        fn(conn, task_id)
        return None

    refused = await ctx.store.write(ctx.store.dir(session.agent_group_id, session.id), apply)
    if refused is not None:
        raise UserError(refused)
    log.info("task %s of session %s: %s (from the app)", task_id, session.id, action)
    if action == "resume":
        ctx.note_due(session.id)  # a resumed task whose time has passed runs now, not at the sweep's next pass
    ctx.events.publish("task.changed", session_id=session.id, action=f"{action}_task", task_id=task_id,
                       source="app")
    directory = await load_directory(ctx.db)
    shown = before if action == "cancel" else await _one(services, session, task_id) or before
    if shown is None:  # the agent changed it between our read and our write: show the id, not a guess
        shown = _Found(TaskSeries(task_id, task_id, "", None, None, ""), None, None, "", False)
    view = _view(services, directory, session, shown)
    view.status = _RESULT[action]
    return view


async def _locate(services: AppServices, task_id: str, session_id: str | None) -> Session:
    """The active session whose ``inbound.db`` holds ``task_id`` (preferring one where it is still live)."""
    ctx = services.ctx
    if session_id:
        session = await sessions_db.get(ctx.db, session_id)
        if session is None or session.status != "active":
            raise NotFound(f"no active session {session_id!r}")
        candidates = [session]
    else:
        candidates = await sessions_db.list_active(ctx.db)

    def holds(conn: sqlite3.Connection) -> tuple[bool, bool]:
        statuses = _statuses(conn, task_id)
        return bool(statuses), bool(statuses & set(STATUSES))

    live: list[Session] = []
    ended: list[Session] = []
    for session in candidates:
        try:
            exists, is_live = await _read(services, session, holds)
        except (FileNotFoundError, sqlite3.Error, SessionDamaged) as err:
            log.warning("tasks: cannot look for task %s in session %s: %s", task_id, session.id, err)
            continue
        if is_live:
            live.append(session)
        elif exists:
            ended.append(session)
    if len(live) > 1:
        raise UserError(f"task id {task_id!r} exists in several sessions ({', '.join(s.id for s in live)}); "
                        "say which one with the session id")
    if live:
        return live[0]
    if ended:
        return ended[0]  # the change itself then says the task already ended
    raise NotFound(f"no scheduled task {task_id!r}; the tasks page or `nanoclaw tasks list` shows the ids")


def _statuses(conn: sqlite3.Connection, task_id: str) -> set[str]:
    """The statuses of a task's rows: the id itself or, for a recurring task, every occurrence of its series."""
    return {str(r[0]) for r in conn.execute(
        "SELECT status FROM messages_in WHERE kind = 'task' AND (id = ? OR series_id = ?)", (task_id, task_id)
    )}


async def _one(services: AppServices, session: Session, task_id: str) -> _Found | None:
    found = await _read(services, session, lambda conn: _series(conn, None))
    return next((f for f in found if task_id in (f.series.series_id, f.series.id)), None)


# --------------------------------------------------------------------------------------------- reading


async def _read(
    services: AppServices, session: Session, fn: Callable[[sqlite3.Connection], T], *, with_outbound: bool = False
) -> T:
    store = services.ctx.store
    return await store.read(store.dir(session.agent_group_id, session.id), fn, with_outbound=with_outbound)


def _series(conn: sqlite3.Connection, status: str | None, *, acked: bool = False) -> list[_Found]:
    """The shared series listing plus what the page needs beyond it (where it answers, the full prompt)."""
    series = scheduling.list_tasks(conn, status, acked=acked)
    if not series:
        return []
    marks = ", ".join("?" for _ in series)
    extra = {
        str(r["id"]): r for r in conn.execute(
            f"SELECT id, channel_type, platform_id, content FROM messages_in WHERE id IN ({marks})",
            [s.id for s in series],
        )
    }
    found = []
    for s in series:
        row = extra.get(s.id)
        prompt, script = s.prompt_preview, False
        if row is not None:
            try:
                data = json.loads(row["content"])
            except ValueError:
                data = None
            if isinstance(data, dict):
                prompt = clean_text(str(data.get("prompt", ""))) or prompt  # the agent wrote it: no hidden controls
                script = bool(data.get("script"))
        found.append(_Found(s, None if row is None else row["channel_type"],
                            None if row is None else row["platform_id"], prompt, script))
    return found


def _view(services: AppServices, directory: Directory, session: Session, found: _Found) -> TaskView:
    s = found.series
    tz = services.settings.tz
    due = False
    if s.process_after:
        try:
            due = parse_utc(s.process_after) <= utcnow()
        except ValueError:
            log.warning("task %s has an unreadable time %r", s.id, s.process_after)
    return TaskView(
        id=s.series_id, occurrence_id=s.id, session_id=session.id, agent_group_id=session.agent_group_id,
        agent_name=directory.agent(session.agent_group_id),
        chat=directory.address(found.channel_type, found.platform_id) or directory.chat(session.messaging_group_id),
        prompt=found.prompt, has_script=found.has_script, schedule="cron" if s.recurrence else "once",
        recurrence=s.recurrence or None, next_run=local_time(s.process_after, tz), next_run_utc=s.process_after,
        due=due, status=s.status,
    )
