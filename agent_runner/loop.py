"""The runner's loop: claim inbound rows, run them through the provider, turn its answers into outbound rows.

One batch at a time: wait for the host to write ``inbound.db`` (file events, with a slow poll as the fallback) or for
a scheduled row to fall due (the loop sleeps until its time), take the newest due rows, claim them in
``processing_ack``, format them and start a query. While the query runs, rows that
arrive are claimed and pushed into it as follow-up turns, so a conversation continues without restarting the model.
The query is ended after a quiet period, or early when a slash command must start a fresh one.

A fresh runner reads its inbox while the provider is still being imported, then asks a provider that can (``claude``)
to start the first session at once, with everything a query is started from but its message; the session gets ready
while the first batch is claimed and formatted.

Each ``result`` answers the oldest unanswered turn (providers answer pushes in order). Its
``<message to="name">`` blocks become outbound rows and the turn's rows are acked ``completed`` in the same
transaction, together with the continuation the result carries: the stored conversation always ends at the last
completed turn, so a turn a crash interrupted is retried once, never also replayed from the conversation. An ``error``
tells the user and acks the rows ``failed``.

A model call that fails because the host's gateway socket is gone (the provider says so, or the socket refuses a probe)
is not the user's error: ``run`` raises ``GatewayLost`` and leaves every claim in place, so the restarted host's sweep
hands the rows to a fresh runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from agent_runner import prompt as system_prompt
from agent_runner.batch_prompt import batch_prompt
from agent_runner.commands import Command, command_of, raw_text
from agent_runner.config import RunnerConfig
from agent_runner.gateway_relay import gateway_reachable
from agent_runner.heartbeat import Heartbeat
from agent_runner.inbound_watch import ChangeSignal, InboundWatcher
from agent_runner.output import parse_output, strip_internal
from agent_runner.people_memory import Remembered, conversation_people, remembered
from agent_runner.protocol import (
    AckStatus,
    InboundRow,
)
from agent_runner.providers.base import GatewayLost, Provider, ProviderEvent, Query
from agent_runner.providers.early_start import StartsEarly
from agent_runner.providers.registry import ProviderLoader
from agent_runner.replies import answer_to, failure_notice, nudge_text, route_blocks
from agent_runner.session_db import SessionDB
from agent_runner.task_script import with_script_output
from agent_runner.tools.context import CurrentBatch, ToolContext
from agent_runner.tools.ours import our_tools
from agent_runner.turns import QueryState, Turn

log = logging.getLogger(__name__)

T = TypeVar("T")

QUIET_SECONDS = 60.0
"""End a query after this long with every turn answered and no new rows; the next row starts a resumed one."""
STOP_GRACE_SECONDS = 2.0
CLEARED = "Session cleared."


class RunnerLoop:
    """Drives one provider over one session folder until ``stop`` is set."""

    def __init__(
        self, config: RunnerConfig, provider: Provider | ProviderLoader, *, quiet_seconds: float = QUIET_SECONDS
    ) -> None:
        self.config = config
        self._loader = provider if isinstance(provider, ProviderLoader) else None
        self._provider = None if isinstance(provider, ProviderLoader) else provider
        self.db = SessionDB(config.session_dir)
        self.changes = ChangeSignal()
        self.watcher = InboundWatcher(config.session_dir, self.changes)
        self.heartbeat = Heartbeat(config.heartbeat)
        self.batch = CurrentBatch()
        self.tools = ToolContext(config=config, db=self.db, batch=self.batch, changes=self.changes,
                                 heartbeat=self.heartbeat)
        self._tools = our_tools(self.tools)
        """The same tools for every query (they follow ``self.batch``), so an early-started session matches."""
        self.quiet_seconds = quiet_seconds
        self.polls = 0
        """How many times ``inbound.db`` was read for new rows (lets tests know a poll has happened)."""
        self._first_poll = True
        self._continuation: str | None = None
        self._claimed: dict[str, InboundRow] = {}
        self._next_due: datetime | None = None
        """When the next scheduled row falls due, as of the last fetch: the wait ends then, not at a poll."""
        self._query_people: frozenset[str] = frozenset()
        """Whose private memory the running query's prompt holds: rows whose people have other memory (more, less or
        other people's) wait for a fresh query, so every turn is answered with the memory of its own people alone."""

    @property
    def provider(self) -> Provider:
        """The provider; one still loading is joined by ``run`` once the session DBs and the file watch are set up."""
        if self._provider is None:
            raise RuntimeError("the provider is still loading; run() takes it when it first needs it")
        return self._provider

    @property
    def watch_ready(self) -> asyncio.Event:
        """Set once file events demonstrably arrive (else only the fallback poll notices new rows)."""
        return self.watcher.ready

    async def _io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    # ------------------------------------------------------------------------------------------ outer loop

    async def run(self, stop: asyncio.Event) -> None:
        """Process batches until ``stop`` is set; claims still open then are released for the next runner.

        Raises ``GatewayLost`` when the host's gateway is gone; the claims then stay for the host's sweep.
        """
        await self._io(self.db.ensure_schema)
        stale = await self._io(self.db.clear_stale_claims)
        if stale:
            log.info("dropped %d stale claims left by a previous runner", stale)
        await self.watcher.start()
        lost = False
        try:
            version = self.changes.version
            first: list[InboundRow] | None = None
            try:
                first = await self._fetch()  # while the provider may still be importing
            except Exception:
                log.exception("the first read of inbound.db failed; the first step reads it again")
            if self._loader is not None:  # its import ran alongside everything above
                self._provider = await self._loader.result()
            self._continuation = await self._io(self.db.load_continuation, self.provider.name)
            log.info("runner started for %s with provider %s (%s)", self.config.session_dir, self.provider.name,
                     "resuming a conversation" if self._continuation else "new conversation")
            if not stop.is_set():
                await self._start_early(first or [])
            self.heartbeat.beat()
            while not stop.is_set():
                try:
                    worked = await self._step_until_stopped(stop, first)
                except GatewayLost:
                    lost = True
                    raise
                except Exception:
                    log.exception("runner step failed; trying again after %.1f s", self.config.poll_seconds)
                    worked = False
                first = None
                if not worked:
                    await self._wait(version, stop, self._until_due(self.config.poll_seconds))
                version = self.changes.version
        finally:
            if lost:
                log.error("the host's model gateway is gone; leaving claims %s for the host's sweep to retry",
                          list(self._claimed))
            else:
                await self._release_open_claims()
            await self.watcher.stop()
            log.info("runner stopped")

    async def _start_early(self, rows: Sequence[InboundRow]) -> None:
        """Let the provider start the first query's session now, if it can: its start then overlaps the first batch.

        The prompt is built for the batch ``rows`` will give (whose memory it loads), so the first query matches it.
        """
        provider = self.provider
        if not isinstance(provider, StartsEarly):
            return
        try:
            batch = self._pick(rows)[0] if any(r.trigger == 1 for r in rows) else []
            provider.start_early(continuation=self._continuation, cwd=self.config.agent_dir,
                                 system_prompt=await self._instructions(await self._memories(batch)),
                                 tools=self._tools)
        except Exception:
            log.exception("starting the provider's session early failed; the first query starts its own")

    async def _step_until_stopped(self, stop: asyncio.Event, rows: list[InboundRow] | None = None) -> bool:
        """Run one step; on ``stop`` give it a grace period (a query aborts itself), then cancel it.

        Without this a 30 s pre-task script or a slow DB lock could outlast the container engine's stop timeout.
        """
        step = asyncio.ensure_future(self._step(stop, rows))
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({step, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                await asyncio.wait({step}, timeout=STOP_GRACE_SECONDS)
            if not step.done():
                log.warning("the current step did not finish after stop; cancelling it")
                step.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await step
                return True
            return step.result()
        finally:
            stopped.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopped
            if not step.done():
                step.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await step

    async def _wait(self, version: int, stop: asyncio.Event, poll: float) -> None:
        """Until ``inbound.db`` changes, ``stop`` is set, or ``poll`` seconds (the fallback poll) pass."""
        if stop.is_set():
            return
        changed = asyncio.ensure_future(self.changes.wait(version, poll))
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({changed, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (changed, stopped):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _until_due(self, poll: float) -> float:
        """How long to wait for a change: ``poll``, or less when a scheduled row falls due sooner."""
        if self._next_due is None:
            return poll
        # A millisecond at least: the stored time is truncated to milliseconds, so the row is due by then.
        return min(poll, max(0.001, (self._next_due - datetime.now(UTC)).total_seconds()))

    async def _fetch(self) -> list[InboundRow]:
        rows, self._next_due = await self._io(self.db.pending_and_next, include_on_wake=self._first_poll,
                                              limit=self.config.max_messages_per_prompt)
        if self._first_poll:  # marks the moment the runner is ready, for the log and bench/cold_start.py
            log.info("first read of inbound.db: %d rows due", len(rows))
        self._first_poll = False
        self.polls += 1
        return rows

    def _command(self, row: InboundRow) -> Command | None:
        """The command a row carries for this provider, if any."""
        return command_of(row, native=self.provider.supports_native_slash_commands)

    async def _step(self, stop: asyncio.Event, rows: list[InboundRow] | None = None) -> bool:
        """Handle one batch (``rows`` when already read); False when there was nothing to do (the caller waits)."""
        if rows is None:
            rows = await self._fetch()
        if not any(r.trigger == 1 for r in rows):
            return False  # the accumulate gate: context rows wait for a row addressed to the agent
        batch, command = self._pick(rows)
        await self._claim(batch)
        try:
            if command == "clear":
                await self._clear(batch[0])
                return True
            batch = await self._run_scripts(batch)
            if not any(r.trigger == 1 for r in batch):
                await self._release(batch)
                return True
            await self._converse(batch, raw=command == "native", stop=stop)
        except GatewayLost:
            raise
        except Exception as err:
            log.exception("handling rows %s failed", [r.id for r in batch])
            open_rows = [r for r in batch if r.id in self._claimed]
            try:
                await self._fail(open_rows, f"the agent runner failed: {err}")
            except Exception:
                log.exception("could not even record the failure of rows %s; the host's sweep retries them",
                              [r.id for r in open_rows])
        return True

    def _pick(self, rows: Sequence[InboundRow]) -> tuple[list[InboundRow], Command | None]:
        """The rows to handle now: everything up to the first slash command, or the command alone.

        A command must be the first input of a fresh query, so the rows before it go first; when those are only
        context, the command goes first and the context waits for the next addressed row.
        """
        for index, row in enumerate(rows):
            command = self._command(row)
            if command is None:
                continue
            before = list(rows[:index])
            if any(r.trigger == 1 for r in before):
                return before, None
            return [row], command
        return list(rows), None

    async def _claim(self, rows: Sequence[InboundRow]) -> None:
        await self._io(self.db.claim, [r.id for r in rows])
        self._claimed.update((r.id, r) for r in rows)

    async def _release(self, rows: Sequence[InboundRow]) -> None:
        ids = [r.id for r in rows if r.id in self._claimed]
        await self._io(self.db.release_claims, ids)
        for row_id in ids:
            self._claimed.pop(row_id, None)

    async def _release_open_claims(self) -> None:
        if not self._claimed:
            return
        try:
            released = await self._io(self.db.release_claims, list(self._claimed))
            log.info("released %d claims on the way out; the next runner takes those rows", released)
        except Exception:
            log.exception("could not release claims %s; the host's sweep resets them", list(self._claimed))
        self._claimed.clear()

    def _settled(self, rows: Sequence[InboundRow]) -> None:
        for row in rows:
            self._claimed.pop(row.id, None)

    # ------------------------------------------------------------------------------------------ commands, scripts

    async def _clear(self, row: InboundRow) -> None:
        """``/clear``: forget the conversation, say so in the chat that asked."""
        self._continuation = None
        await self._io(self.db.clear_continuation, self.provider.name)
        await self._io(self.db.write_messages, [answer_to(row, CLEARED)], complete=[row.id])
        self._settled([row])
        log.info("conversation cleared by %s", row.id)

    async def _run_scripts(self, rows: Sequence[InboundRow]) -> list[InboundRow]:
        """Run task pre-check scripts; a task whose script says "no" is completed without waking the agent."""
        kept: list[InboundRow] = []
        for row in rows:
            checked = await with_script_output(row, self.config.agent_dir)
            if checked is not None:
                kept.append(checked)
                continue
            await self._io(self.db.set_acks, [row.id], AckStatus.COMPLETED)
            self._settled([row])
        return kept

    # ------------------------------------------------------------------------------------------ queries

    async def _format(self, rows: Sequence[InboundRow]) -> str:
        return await self._io(batch_prompt, self.db, rows, self.config)

    async def _converse(self, batch: list[InboundRow], *, raw: bool, stop: asyncio.Event) -> None:
        """Run a query for ``batch``; if the stored continuation turns out invalid, once more without it."""
        text = raw_text(batch[0]) if raw else await self._format(batch)
        state = await self._query(text, Turn(rows=batch, raw=raw), stop, may_retry=True)
        if state.retry_fresh and not stop.is_set():
            rows = [r for turn in state.turns for r in turn.rows]
            if rows:
                log.info("retrying %d rows in a fresh conversation", len(rows))
                raw_again = raw and len(state.turns) == 1 and state.turns[0].raw
                text = raw_text(rows[0]) if raw_again else await self._format(rows)
                await self._query(text, Turn(rows=rows, raw=raw_again), stop, may_retry=False)

    def _make_current(self, state: QueryState) -> None:
        """Point the tools at the turn being answered now."""
        if not state.turns:
            return
        turn = state.turns[0]
        turn.sent_before = self.tools.sent
        self.batch.rows = list(turn.rows or turn.context)

    async def _query(self, text: str, first: Turn, stop: asyncio.Event, *, may_retry: bool) -> QueryState:
        loop = asyncio.get_running_loop()
        state = QueryState(turns=deque([first]), last_activity=loop.time())
        self._make_current(state)
        memories = await self._memories(first.rows or first.context)
        self._query_people = frozenset(m.person.user_id for m in memories)
        instructions = await self._instructions(memories)
        try:
            query = self.provider.query(prompt=text, continuation=self._continuation, cwd=self.config.agent_dir,
                                        system_prompt=instructions, tools=self._tools)
        except Exception as err:
            log.exception("the provider could not start a query")
            await self._on_error(str(err) or type(err).__name__, err, state, may_retry=may_retry,
                                 gateway_lost=isinstance(err, GatewayLost))
            return state
        consumer = asyncio.ensure_future(self._consume(query, state, may_retry=may_retry))
        pusher = asyncio.ensure_future(self._follow_ups(query, state))
        stopped = asyncio.ensure_future(stop.wait())
        finished = False
        try:
            await asyncio.wait({consumer, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if consumer.done():
                consumer.result()  # an unexpected error propagates to _step, which fails the rows
                finished = not (state.failed or state.retry_fresh)
        finally:
            for task in (pusher, stopped):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if not finished:
                await self._abort(query)
            if not consumer.done():
                consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await consumer
        return state

    async def _instructions(self, memories: Sequence[Remembered]) -> str:
        """The system prompt, built afresh: the host rewrites the destinations on every wake.

        It holds the private memory in ``memories`` (read once, so it matches ``_query_people``) and nobody else's.
        """
        destinations = await self._io(self.db.destinations)
        return await self._io(system_prompt.build, self.config, destinations, memories=memories)

    async def _memories(self, rows: Sequence[InboundRow]) -> list[Remembered]:
        """The memory files of the people in the conversation ``rows`` start that hold something (``people_memory``)."""
        people = await self._io(conversation_people, rows, self.db.newest_chat)
        return await self._io(remembered, self.config.agent_dir, people, max_chars=system_prompt.MAX_FILE_CHARS)

    async def _abort(self, query: Query) -> None:
        try:
            async with asyncio.timeout(STOP_GRACE_SECONDS):
                await query.abort()
        except Exception:
            log.exception("aborting the query failed")

    async def _consume(self, query: Query, state: QueryState, *, may_retry: bool) -> None:
        async for event in query.events():
            self.heartbeat.beat()
            await self._on_event(event, query, state, may_retry=may_retry)
            if state.failed or state.retry_fresh:
                return
        leftover = [r for turn in state.turns for r in turn.rows]
        if leftover:
            log.error("the provider stopped without answering rows %s", [r.id for r in leftover])
            await self._check_gateway(reported=False, text="the model stopped without answering")
            await self._fail(leftover, "the model stopped without answering")
            state.failed = True

    async def _follow_ups(self, query: Query, state: QueryState) -> None:
        """Push new rows into the live query; end it when a command waits or after the quiet period."""
        loop = asyncio.get_running_loop()
        while not (state.failed or state.retry_fresh):
            version = self.changes.version
            try:
                outcome = await self._push_new(query, state)
            except Exception:
                log.exception("checking for follow-up messages failed")
                outcome = "idle"
            if outcome == "ended":
                return
            if outcome == "pushed":
                continue
            timeout = self._until_due(self.config.poll_seconds)
            if not state.turns:
                idle = loop.time() - state.last_activity
                if idle >= self.quiet_seconds:
                    log.info("conversation quiet for %.0f s; ending the query", idle)
                    state.ended = True
                    query.end()
                    return
                timeout = min(timeout, self.quiet_seconds - idle)
            await self.changes.wait(version, timeout)

    async def _push_new(self, query: Query, state: QueryState) -> Literal["pushed", "idle", "ended"]:
        """Claim and push rows that arrived.

        A waiting slash command ends the query instead (turns already pushed are still answered), because it must
        be the first input of a fresh query.
        """
        rows = await self._fetch()
        if any(self._command(r) for r in rows):
            log.info("a slash command is waiting; ending the query so it starts a fresh one")
            state.ended = True
            query.end()
            return "ended"
        if not any(r.trigger == 1 for r in rows):
            return "idle"
        if {m.person.user_id for m in await self._memories(rows)} != self._query_people:
            # The running prompt holds other people's private memory: a fresh query builds the prompt for these rows.
            log.info("rows from other people than the running query's are waiting; ending the query so a fresh one "
                     "loads only their memory")
            state.ended = True
            query.end()
            return "ended"
        await self._claim(rows)
        rows = await self._run_scripts(rows)
        if not any(r.trigger == 1 for r in rows):
            await self._release(rows)
            return "idle"
        text = await self._format(rows)
        turn = Turn(rows=rows)
        state.turns.append(turn)
        query.push(text)
        if len(state.turns) == 1:
            self._make_current(state)
        state.last_activity = asyncio.get_running_loop().time()
        log.info("pushed %d follow-up rows into the running query", len(rows))
        return "pushed"

    # ------------------------------------------------------------------------------------------ events

    async def _on_event(self, event: ProviderEvent, query: Query, state: QueryState, *, may_retry: bool) -> None:
        if event.kind == "init" and event.continuation and event.continuation != self._continuation:
            self._continuation = event.continuation
            await self._quietly("saving the continuation", self.db.save_continuation, self.provider.name,
                                event.continuation)
        if event.kind == "tool_start":
            await self._quietly("recording the running tool", self.db.set_tool, event.tool_name or "unknown",
                                event.tool_timeout_ms)
        elif event.kind == "tool_end":
            await self._quietly("clearing the running tool", self.db.clear_tool)
        elif event.kind == "usage":
            # The host's gateway meters every model call (the CLI's own ones too); here it is only liveness.
            log.debug("model %s used %s", event.model or self.config.model or self.provider.name, event.usage)
        elif event.kind == "result":
            await self._on_result(event, query, state)
        elif event.kind == "error":
            await self._on_error(event.text or "the model failed", None, state, may_retry=may_retry,
                                 gateway_lost=event.gateway_lost)
        elif event.kind == "compacted":
            log.info("the provider compacted the conversation: %s", event.text)

    async def _quietly(self, what: str, fn: Callable[..., object], *args: Any) -> None:
        """Bookkeeping whose failure must not end the conversation (it is logged)."""
        try:
            await self._io(fn, *args)
        except Exception:
            log.exception("%s failed", what)

    async def _on_result(self, event: ProviderEvent, query: Query, state: QueryState) -> None:
        loop = asyncio.get_running_loop()
        state.last_activity = loop.time()  # before any await: the quiet timer must not fire mid-answer
        if state.turns:
            turn = state.turns.popleft()
        else:
            log.warning("the provider answered more turns than were given; routing the answer anyway")
            turn = Turn(rows=[])
        parsed = parse_output(event.text)
        for note in parsed.internal:
            log.debug("internal: %s", note)
        destinations = await self._io(self.db.destinations)
        routing = await self._io(self.db.routing)
        messages, unknown = await self._io(route_blocks, self.db, parsed, destinations, routing,
                                           turn.rows or turn.context)
        if turn.raw and not parsed.blocks and turn.rows and strip_internal(event.text):
            # A native command's output is the answer to whoever sent the command.
            messages.append(answer_to(turn.rows[0], strip_internal(event.text)))
        elif parsed.stray:
            log.info("scratchpad (not sent): %s", parsed.stray[:500])
        advanced = event.continuation if event.continuation and event.continuation != self._continuation else None
        saved = {SessionDB.continuation_key(self.provider.name): advanced} if advanced else None
        await self._io(self.db.write_messages, messages, complete=[r.id for r in turn.rows], state=saved)
        self._settled(turn.rows)
        if advanced:
            self._continuation = advanced
        by_tools = self.tools.sent - turn.sent_before
        if (not messages and not turn.nudge and not turn.raw and not state.ended and destinations and by_tools == 0
                and (parsed.stray or unknown)):
            nudge = Turn(rows=[], nudge=True, context=turn.rows or turn.context)
            state.turns.append(nudge)
            query.push(nudge_text(destinations, unknown))
            log.info("the answer addressed nobody; nudged the agent to re-send it wrapped")
        self._make_current(state)
        state.last_activity = loop.time()

    async def _on_error(self, text: str, error: BaseException | None, state: QueryState, *, may_retry: bool,
                        gateway_lost: bool = False) -> None:
        await self._check_gateway(reported=gateway_lost, text=text)
        invalid = self._continuation is not None and self.provider.is_session_invalid(error or text)
        if invalid:
            log.warning("the stored conversation cannot be resumed (%s); starting a fresh one", text)
            self._continuation = None
            await self._io(self.db.clear_continuation, self.provider.name)
            if may_retry:
                state.retry_fresh = True
                return
        rows = [r for turn in state.turns for r in turn.rows]
        log.error("the provider failed: %s (rows %s)", text, [r.id for r in rows])
        await self._fail(rows, text)
        state.failed = True

    async def _check_gateway(self, *, reported: bool, text: str) -> None:
        """Raise ``GatewayLost`` when a failed model call is the host's absence rather than an answer for the user.

        The provider's word (``reported``) is trusted; otherwise the socket is probed, which also catches a host that
        died mid-stream. Without a gateway socket (a TCP base URL) every failure is the user's to hear about.
        """
        socket = self.config.gateway_socket
        if socket is None:
            return
        if reported or not await gateway_reachable(socket):
            log.error("the model call failed because the host's model gateway (%s) is gone: %s", socket, text)
            raise GatewayLost(f"the model gateway at {socket} is gone: {text}")

    async def _fail(self, rows: Sequence[InboundRow], text: str) -> None:
        """Tell the chat that asked, and ack the rows ``failed`` (the host keeps them failed)."""
        if not rows:
            return
        notice = failure_notice(rows, text, await self._io(self.db.routing))
        if notice is None:
            log.error("nobody to tell about the failure of rows %s: %s", [r.id for r in rows], text)
        await self._io(self.db.write_messages, [notice] if notice else [], fail=[r.id for r in rows])
        self._settled(rows)


__all__ = ["CLEARED", "QUIET_SECONDS", "RunnerLoop", "Turn"]
