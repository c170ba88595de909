"""Delivery: sends what agents wrote in ``outbound.db`` to chats, other agents or the host's own actions.

Exactly once is the goal, so three things hold:

* one delivery pass per session at a time (an in-flight guard; a second caller makes the running pass loop again);
* the session's ``delivered`` table is the truth for "already handled";
* every send is recorded as ``sending`` in ``delivery_attempts`` *before* the adapter is called, so a crash leaves a
  trace, and :meth:`Delivery.recover_uncertain` never resends blindly through an adapter that cannot dedupe.

File events should trigger :meth:`Delivery.deliver_session` promptly; the fallback poll here covers VM mounts and lost
events (running sessions every second) and a slow sweep over every active session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from agent_runner.protocol import (
    AGENT_CHANNEL,
    AskQuestionOut,
    ContractError,
    DeliveryStatus,
    MessageKind,
    OutboundContent,
    OutboundRow,
    row_from_mapping,
)
from nanoclaw_app.core import outbound
from nanoclaw_app.core.agent_route import RouteRefused, route_to_agent
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.session_repair import repair_session
from nanoclaw_app.core.system_actions import SystemActions
from nanoclaw_app.db import delivery_attempts as attempts_db
from nanoclaw_app.db import destinations, messaging, questions
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import Session
from nanoclaw_app.errors import ChannelDown, IntegrityError, SessionDamaged, TransientError, UserError
from nanoclaw_app.sessions.files import check_basename
from nanoclaw_app.sessions.mounted import MountedDir
from nanoclaw_app.timeutil import iso, now_iso, utcnow

log = logging.getLogger(__name__)

FailureFn = Callable[[Session, str], Awaitable[None]]

RETRY_BASE_SECONDS = 2.0
"""Backoff after a failed send: base × 2^(attempt-1)."""
LIVE_CONTAINER = frozenset({"running", "starting", "idle"})
UNCERTAIN_ERROR = "the app stopped while sending; this reply may not have arrived"
STOP_GRACE_SECONDS = 10.0
CHANNEL_WAIT_SECONDS = 300.0
"""A send waiting for its channel is looked at again after this even if no "back up" arrives (a safety net)."""

Address = tuple[str, str, str | None]


class DeliveryRefused(UserError):
    """A permanent refusal decided by the host (ACL, no address); retrying cannot help."""


_PERMANENT = (UserError, ContractError, IntegrityError)
"""Errors that are the same on every retry: bad content, refused ACL, unknown seq, unsafe or oversized files."""


class Delivery:
    """Delivers due outbound rows per session, with retries, persisted attempts and crash recovery."""

    def __init__(
        self,
        ctx: CoreContext,
        *,
        actions: SystemActions,
        on_failure: FailureFn,
        quiet_poll_seconds: float | None = None,
    ) -> None:
        """Set up delivery; nothing runs until :meth:`start`.

        ``quiet_poll_seconds`` is the poll interval while no retry is due: the file watcher does the real work, so
        where its events are reliable (a local kernel) this can be long. None uses ``fallback_poll_seconds``.
        """
        self._ctx = ctx
        self._actions = actions
        self._on_failure = on_failure
        self._quiet_poll = quiet_poll_seconds
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._resumes: dict[str, int] = {}
        """How often each channel came back: a pass that parked a row meanwhile sees the link is up again."""
        self._held_chats: dict[str, dict[tuple[str | None, str | None, str | None], ChannelDown]] = {}
        """Per session in a pass: chats whose earlier reply waits for its link, so later replies to them wait too."""
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._kick = asyncio.Event()

    # ------------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the fallback poll (idempotent)."""
        if self._task is not None:
            return
        self._stopping.clear()
        self._task = asyncio.create_task(self._poll(), name="delivery-poll")

    async def stop(self) -> None:
        """Stop the poll, letting a pass in progress finish its current session first."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=STOP_GRACE_SECONDS)
        except TimeoutError:
            log.warning("delivery poll did not finish within %.0f s; cancelling it", STOP_GRACE_SECONDS)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        settings = self._ctx.settings
        next_sweep = loop.time()  # the first pass covers every session: rows may have waited across a restart
        while not self._stopping.is_set():
            retrying: set[str] | list[str] = []
            try:
                sessions = await sessions_db.list_active(self._ctx.db)
                # Sessions with a retry due soon are polled too, so a 2 s backoff is not stretched to a sweep.
                retrying = await attempts_db.retrying_sessions(self._ctx.db)
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + settings.sweep_interval_seconds
                else:
                    sessions = [s for s in sessions if s.container_status in LIVE_CONTAINER or s.id in retrying]
                for session in sessions:
                    if self._stopping.is_set():
                        break
                    await self.deliver_session(session.id)
            except Exception:
                log.exception("delivery poll pass failed; trying again on the next tick")
            quiet = self._quiet_poll if self._quiet_poll is not None else settings.fallback_poll_seconds
            interval = settings.fallback_poll_seconds if retrying else max(quiet, settings.fallback_poll_seconds)
            self._kick.clear()
            waiters = [asyncio.ensure_future(self._stopping.wait()), asyncio.ensure_future(self._kick.wait())]
            try:
                await asyncio.wait(waiters, timeout=min(interval, settings.sweep_interval_seconds),
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
                await asyncio.gather(*waiters, return_exceptions=True)

    # ------------------------------------------------------------------------------------------ passes

    async def deliver_session(self, session_id: str) -> int:
        """Deliver every due row of a session; returns how many rows were handled (sent, failed, retried, applied).

        If a pass is already running for the session, this only asks it to look again and returns 0, so
        overlapping triggers never double-send and a trigger arriving mid-pass is never lost.
        """
        if session_id in self._running:
            self._again.add(session_id)
            return 0
        self._running.add(session_id)
        handled = 0
        try:
            while True:
                self._again.discard(session_id)
                self._held_chats.pop(session_id, None)
                handled += await self._pass(session_id)
                if session_id not in self._again:
                    break
        finally:
            self._running.discard(session_id)
            self._again.discard(session_id)
        return handled

    async def _pass(self, session_id: str) -> int:
        session = await sessions_db.get(self._ctx.db, session_id)
        if session is None:
            return 0
        folder = self._ctx.store.dir(session.agent_group_id, session.id)
        if not await self._ctx.store.has_files(folder):  # a planted link counts: it is read, refused and repaired
            return 0
        try:
            rows = await self._ctx.store.due_outbound(folder)
        except SessionDamaged as damage:
            # A corrupt or swapped file would stall every later reply: set it aside, start afresh, tell people.
            await repair_session(self._ctx, session, damage)
            return 0
        except Exception:
            log.exception("session %s: cannot read its outbound rows", session_id)
            return 0
        handled = 0
        resumes = dict(self._resumes)
        for row in rows:
            chat = (row.channel_type, row.platform_id, row.thread_id)
            held = self._held_chats.get(session_id, {}).get(chat) if row.kind != MessageKind.SYSTEM else None
            try:
                if held is not None:  # an earlier reply to this chat waits for its link: this one waits behind it
                    if self._resumes.get(held.channel_type, 0) == resumes.get(held.channel_type, 0):
                        await self._wait_for_channel(session, row, held, resumes)
                        handled += 1
                    continue  # (the link is back already: the next pass, already asked for, sends it after)
                if await self._handle(session, folder, row, resumes):
                    handled += 1
            except Exception:
                # Bookkeeping itself failed (central DB, session DB); the row stays due and is tried next pass.
                log.exception("session %s: delivering row %s failed unexpectedly", session_id, row.id)
        return handled

    # ------------------------------------------------------------------------------------------ one row

    async def _handle(self, session: Session, folder: Path, row: OutboundRow, resumes: dict[str, int]) -> bool:
        ctx = self._ctx
        previous = await attempts_db.get(ctx.db, session.id, row.id)
        if previous is not None:
            due_at = previous.next_attempt_at
            if previous.state == attempts_db.RETRY and due_at and due_at > now_iso():
                return False
            if previous.state == attempts_db.FAILED:
                await ctx.store.record_delivery(folder, row.id, None, DeliveryStatus.FAILED, previous.last_error)
                return True
            if previous.state == attempts_db.DELIVERED:
                # Recorded as sent but missing from ``delivered`` (the session DB write was lost): never resend.
                await ctx.store.record_delivery(folder, row.id, None, DeliveryStatus.DELIVERED)
                return True
            if previous.state == attempts_db.SENDING and not await self._may_resend(session, row):
                await self._give_up(session, folder, row, UNCERTAIN_ERROR, tell=True)
                return True

        attempt = await attempts_db.begin(ctx.db, session.id, row.id)
        content: OutboundContent | None = None
        try:
            platform_message_id: str | None = None
            if row.kind == MessageKind.SYSTEM:
                await self._actions.apply(session, row)
            elif row.channel_type == AGENT_CHANNEL:
                await route_to_agent(ctx, session, row)
            else:
                content = outbound.decode(row)
                platform_message_id = await self._send(session, folder, row, content)
        except RouteRefused as err:
            await self._give_up(session, folder, row, str(err), tell=False)  # the source agent was told
            return True
        except ChannelDown as err:
            await self._wait_for_channel(session, row, err, resumes)
            if row.kind != MessageKind.SYSTEM:  # later replies to this chat in this pass wait behind it, in order
                self._held_chats.setdefault(session.id, {})[(row.channel_type, row.platform_id, row.thread_id)] = err
            return True
        except _PERMANENT as err:
            await self._give_up(session, folder, row, str(err), tell=True, content=content)
            return True
        except Exception as err:
            await self._failed_attempt(session, folder, row, attempt, err, content)
            return True

        await ctx.store.record_delivery(folder, row.id, platform_message_id, DeliveryStatus.DELIVERED)
        await attempts_db.succeeded(ctx.db, session.id, row.id)
        if isinstance(content, AskQuestionOut):
            await questions.set_platform_message(ctx.db, content.question_id, platform_message_id)
        _remove_outbox(folder, row.id)
        if row.kind != MessageKind.SYSTEM and row.channel_type != AGENT_CHANNEL:
            ctx.events.publish("delivery.sent", session_id=session.id, message_out_id=row.id,
                               channel_type=row.channel_type, platform_message_id=platform_message_id,
                               attempt=attempt)
        return True

    async def _send(self, session: Session, folder: Path, row: OutboundRow, content: OutboundContent) -> str | None:
        channel_type, platform_id, thread_id = await self._address(session, row)
        message = await outbound.build_message(self._ctx, folder, row, content)
        if isinstance(content, AskQuestionOut):
            # Before sending: a click may arrive before ``deliver`` even returns.
            await questions.create(
                self._ctx.db,
                question_id=content.question_id,
                session_id=session.id,
                message_out_id=row.id,
                platform_id=platform_id,
                channel_type=channel_type,
                thread_id=thread_id,
                title=content.title,
                options_json=_options_json(content),
            )
        adapter = self._ctx.channels.get(channel_type)
        if adapter is None:
            raise TransientError(f"the {channel_type} channel is not running")
        if self._ctx.typing is not None and message.kind != "reaction":
            await self._ctx.typing.replied(channel_type, platform_id, thread_id)  # no indicator after the answer
        return await adapter.deliver(platform_id, thread_id, message)

    async def _address(self, session: Session, row: OutboundRow) -> Address:
        """Where the row goes, after the ACL: the session's own chat always; another chat only via a destination."""
        own = await messaging.get(self._ctx.db, session.messaging_group_id) if session.messaging_group_id else None
        if not row.channel_type or not row.platform_id:
            if own is None:
                raise DeliveryRefused("the message has no address and the session has no chat of its own")
            return own.channel_type, own.platform_id, row.thread_id or session.thread_id
        if own is not None and own.channel_type == row.channel_type and own.platform_id == row.platform_id:
            # A per-thread session answers in its thread unless the row names another one.
            return row.channel_type, row.platform_id, row.thread_id or session.thread_id
        chat = await messaging.find(self._ctx.db, row.channel_type, row.platform_id)
        if chat is None or await destinations.find_target(
            self._ctx.db, session.agent_group_id, "channel", chat.id
        ) is None:
            raise DeliveryRefused(
                f"the agent may not send to {row.channel_type}:{row.platform_id}: it has no destination for that chat"
            )
        return row.channel_type, row.platform_id, row.thread_id

    async def _may_resend(self, session: Session, row: OutboundRow) -> bool:
        """Whether a send of unknown outcome may simply be tried again without risking a duplicate."""
        if row.kind == MessageKind.SYSTEM or row.channel_type == AGENT_CHANNEL:
            return True  # host-side effects: re-applying is at worst a no-op or a second note
        channel_type = row.channel_type
        if not channel_type and session.messaging_group_id:
            own = await messaging.get(self._ctx.db, session.messaging_group_id)
            channel_type = own.channel_type if own else None
        adapter = self._ctx.channels.get(channel_type) if channel_type else None
        # A channel that is not running cannot say whether it dedupes: never resend blindly.
        return bool(adapter is not None and adapter.idempotent_delivery)

    # ------------------------------------------------------------------------------------------ outcomes

    async def _failed_attempt(
        self, session: Session, folder: Path, row: OutboundRow, attempt: int, err: Exception,
        content: OutboundContent | None,
    ) -> None:
        ctx = self._ctx
        error = str(err) or type(err).__name__
        if attempt < ctx.settings.delivery_max_attempts:
            delay = RETRY_BASE_SECONDS * 2 ** (attempt - 1)
            if isinstance(err, TransientError) and err.retry_after:
                delay = max(delay, err.retry_after)
            when = iso(utcnow() + timedelta(seconds=delay))
            await attempts_db.retry_later(ctx.db, session.id, row.id, error, when)
            self._kick.set()  # the poll may be in a long quiet sleep; a retry is due soon
            log.warning("session %s: attempt %d to deliver %s failed (%s); retrying after %s", session.id, attempt,
                        row.id, error, when)
            ctx.events.publish("delivery.retry", session_id=session.id, message_out_id=row.id, attempt=attempt,
                               error=error, next_attempt_at=when)
            return
        await self._give_up(session, folder, row, f"{error} (after {attempt} attempts)", tell=True, content=content)

    async def _wait_for_channel(self, session: Session, row: OutboundRow, err: ChannelDown,
                                resumes: dict[str, int]) -> None:
        """The platform link is down: park the row (persisted) until the adapter reports the channel up again.

        When the channel came back while this pass was sending (``resumes`` is the count at its start), the row is
        due at once and the session is passed again: the resume that ran meanwhile could not see this row yet.
        """
        when = iso(utcnow() + timedelta(seconds=CHANNEL_WAIT_SECONDS))
        await attempts_db.wait_for_channel(self._ctx.db, session.id, row.id, err.channel_type, str(err), when)
        if self._resumes.get(err.channel_type, 0) != resumes.get(err.channel_type, 0):
            await attempts_db.resume_channel(self._ctx.db, err.channel_type)
            self._again.add(session.id)
        log.info("session %s: %s waits for %s to reconnect (%s)", session.id, row.id, err.channel_type, err)
        self._ctx.events.publish("delivery.waiting", session_id=session.id, message_out_id=row.id,
                                 channel_type=err.channel_type, error=str(err))

    async def resume_channel(self, channel_type: str) -> int:
        """A channel came back: send what waited for it, in order; returns how many sessions had sends waiting."""
        self._resumes[channel_type] = self._resumes.get(channel_type, 0) + 1
        sessions = await attempts_db.resume_channel(self._ctx.db, channel_type)
        if sessions:
            log.info("%s is back: sending what waited in %d sessions", channel_type, len(sessions))
        for session_id in sorted(sessions):
            try:
                await self.deliver_session(session_id)
            except Exception:
                log.exception("session %s: sending what waited for %s failed; the poll retries", session_id,
                              channel_type)
        return len(sessions)

    async def _give_up(
        self, session: Session, folder: Path, row: OutboundRow, error: str, *, tell: bool,
        content: OutboundContent | None = None,
    ) -> None:
        ctx = self._ctx
        await ctx.store.record_delivery(folder, row.id, None, DeliveryStatus.FAILED, error)
        await attempts_db.failed(ctx.db, session.id, row.id, error)
        log.error("session %s: delivery of %s to %s:%s failed for good: %s", session.id, row.id, row.channel_type,
                  row.platform_id, error)
        ctx.events.publish("delivery.failed", session_id=session.id, message_out_id=row.id,
                           channel_type=row.channel_type, platform_id=row.platform_id, error=error)
        if not tell:
            return
        if content is None:
            with contextlib.suppress(ContractError):
                content = outbound.decode(row)
        gist = outbound.preview(content)
        text = f"A message from your agent could not be delivered: {error}."
        if gist:
            text += f" It began: “{gist}”"
        try:
            await self._on_failure(session, text)
        except Exception:
            log.exception("session %s: could not tell anyone that %s failed", session.id, row.id)

    # ------------------------------------------------------------------------------------------ startup

    async def recover_uncertain(self) -> None:
        """Settle sends the previous run left in ``sending``: confirmed ones succeed, the rest never resend blindly.

        Only an adapter that dedupes by ``delivery_id`` gets the row again (left for a normal retry); otherwise it is
        failed with an explanation and the user is told.
        """
        ctx = self._ctx
        for attempt in await attempts_db.uncertain(ctx.db):
            try:
                await self._recover_one(attempt)
            except Exception:
                log.exception("cannot settle uncertain delivery %s of session %s", attempt.message_out_id,
                              attempt.session_id)

    async def _recover_one(self, attempt: attempts_db.DeliveryAttempt) -> None:
        ctx = self._ctx
        session = await sessions_db.get(ctx.db, attempt.session_id)
        folder = ctx.store.dir(session.agent_group_id, session.id) if session else None
        if session is None or folder is None or not await ctx.store.has_files(folder):
            await attempts_db.failed(ctx.db, attempt.session_id, attempt.message_out_id, "the session is gone")
            log.warning("uncertain delivery %s: session %s is gone", attempt.message_out_id, attempt.session_id)
            return
        mid = attempt.message_out_id
        done = await ctx.store.read(
            folder,
            lambda conn: conn.execute("SELECT status FROM delivered WHERE message_out_id = ?", (mid,)).fetchone(),
            with_outbound=False,
        )
        if done is not None:
            if done[0] == DeliveryStatus.DELIVERED:
                await attempts_db.succeeded(ctx.db, session.id, mid)
            else:
                await attempts_db.failed(ctx.db, session.id, mid, "recorded as failed")
            return
        row = await ctx.store.read(folder, lambda conn: _outbound_row(conn, mid))
        if row is None:
            await attempts_db.failed(ctx.db, session.id, mid, "the outbound row is gone")
            return
        if await self._may_resend(session, row):
            log.info("uncertain delivery %s of session %s will be retried (adapter dedupes)", mid, session.id)
            return
        await self._give_up(session, folder, row, UNCERTAIN_ERROR, tell=True)


def _outbound_row(conn: sqlite3.Connection, message_out_id: str) -> OutboundRow | None:
    found = conn.execute("SELECT * FROM ob.messages_out WHERE id = ?", (message_out_id,)).fetchone()
    if found is None:
        return None
    row: OutboundRow = row_from_mapping(OutboundRow, found)
    return row


def _options_json(content: AskQuestionOut) -> str:
    return json.dumps([o.to_dict() for o in content.option_list], ensure_ascii=False)


def _remove_outbox(folder: Path, message_out_id: str) -> None:
    """Remove a delivered row's outbox folder; best effort, and never through a symlink."""
    try:
        check_basename(message_out_id, "message id")
        with MountedDir.open(folder) as session, session.subdir("outbox") as outbox:
            outbox.remove_tree(message_out_id)
    except FileNotFoundError:
        return
    except Exception as err:
        log.warning("could not remove outbox/%s of %s: %s", message_out_id, folder.name, err)
