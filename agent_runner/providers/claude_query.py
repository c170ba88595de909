"""One live Claude Code conversation (:class:`ClaudeQuery`): the SDK client driven from our loop.

Follow-ups are pushed into the running session, SDK messages become ``ProviderEvent``s, hooks report tool activity
and compaction (which archives the transcript first), and failures become plain text for the user — or a
``gateway_lost`` error when the host's gateway went away, so the loop keeps the work.

A query may be started before its first message is known (``prompt=None`` and :meth:`ClaudeQuery.start`): the CLI then
starts while the runner reads its inbox, and the first ``push`` is its first message. Should that early CLI end before
it answered anything, one normal start replaces it once a message waits.

The continuation is a :class:`ResumePoint`: the session id and the transcript entry that ended the last answered turn.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    CLINotFoundError,
    HookContext,
    HookInput,
    HookJSONOutput,
    HookMatcher,
    Message,
    ProcessError,
    ResultError,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    UserMessage,
)
from claude_agent_sdk.types import HookEvent

from agent_runner.providers.base import ProviderEvent
from agent_runner.providers.claude_transcript import archive_transcript

log = logging.getLogger(__name__)

BASH_DEFAULT_TIMEOUT_MS = 120_000
"""Claude Code's Bash timeout when the model gives none."""
STREAM_ACTIVITY_INTERVAL = 1.0
"""Partial-message events arrive per token; one ``activity`` per second of them is enough for the heartbeat."""
INTERRUPT_TIMEOUT = 5.0
_STDERR_LINES = 20


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where a resumed session continues: its id, and the last transcript entry of its last answered turn.

    Claude Code writes each user message into the transcript before the model answers it. Resumed by id alone, a
    session brings back turns a crash interrupted, which the loop retries anyway, so the model would read them twice.
    Resumed at the entry that ended the last answered turn (``--resume-session-at``), it leaves them out.
    """

    session_id: str
    at: str | None = None
    """None only for a continuation stored before resume points existed: it resumes the whole transcript."""

    def text(self) -> str:
        """The stored continuation: ``<session id>@<entry uuid>``."""
        return f"{self.session_id}@{self.at}" if self.at else self.session_id

    @classmethod
    def parse(cls, text: str) -> ResumePoint:
        """Read a stored continuation (a bare session id is an old one)."""
        session_id, _, at = text.partition("@")
        return cls(session_id, at or None)


OptionsFactory = Callable[[dict[HookEvent, list[HookMatcher]], Callable[[str], None]], ClaudeAgentOptions]
"""Builds the SDK options once the query has its hooks and stderr sink."""


class ClaudeQuery:
    """One live Claude Code session: a driver task owns the client from connect to disconnect.

    Pushed messages go to the CLI one at a time, each once the previous one is answered: the CLI would fold a message
    sent mid-turn into the running turn, and then one ``result`` would answer two pushes, while the loop pairs results
    with pushes one to one. Each message carries its own uuid and results name the uuids they answered, so "answered"
    is exact rather than a count of results.
    """

    def __init__(
        self,
        prompt: str | None,
        *,
        options: OptionsFactory,
        resumed: ResumePoint | None = None,
        tool_timeouts: dict[str, int | None],
        archive_dir: Path,
        timezone: str,
        assistant_name: str,
        model: str | None,
        prepare: Callable[[], Awaitable[None]] | None = None,
        gateway_lost: Callable[[], bool] = lambda: False,
    ) -> None:
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self._options = options(self._hooks(), self._on_stderr)
        self._tool_timeouts = tool_timeouts
        self._archive_dir = archive_dir
        self._timezone = timezone
        self._assistant_name = assistant_name
        self._model = model
        self._prepare = prepare
        """Run before the CLI starts (the provider's relay begins accepting)."""
        self._gateway_lost = gateway_lost
        """Asked when the query fails: was the gateway gone (the host down) rather than answering with an error?"""
        self._inbox: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._has_input = asyncio.Event()
        self._pending: dict[str, str] = {}
        """uuid → text of messages sent (or queued) and not yet answered, oldest first."""
        self._events: asyncio.Queue[ProviderEvent | None] = asyncio.Queue()
        self._answered = asyncio.Event()
        """Set whenever a result answered a message; the writer waits on it before sending the next."""
        self._stop = asyncio.Event()
        self._ended = False
        self._aborted = False
        self._failed = False
        self._session_id: str | None = None
        self._resume_point = resumed
        """Where a later query continues: moved on by every answered turn, never by an unanswered one."""
        self._last_entry: str | None = None
        """The uuid of the newest transcript entry of the main conversation the CLI has streamed."""
        self._last_stream_activity = 0.0
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._may_restart = prompt is None
        """Started before its first message, and the CLI has not answered one yet: if it ends now, start anew."""
        self._restart = False
        """The current CLI ended while ``_may_restart``: its failure is not the user's; the driver starts another."""
        self._written = False
        if prompt is not None:
            self._enqueue(prompt)

    # -- the Query interface -----------------------------------------------------------------------------------------

    def push(self, text: str) -> None:
        """Send another user message into the live session; it is answered after the ones before it."""
        if self._ended:
            raise RuntimeError("push() after end(): the query takes no more input")
        self._enqueue(text)

    def end(self) -> None:
        """Finish once every message sent so far is answered."""
        self._ended = True
        self._check_finished()

    def start(self) -> None:
        """Start the CLI now rather than on ``events()``, so it gets ready while the first message is prepared."""
        if self._task is None and not self._aborted:
            self._task = asyncio.create_task(self._drive(), name="claude-query")

    async def events(self) -> AsyncGenerator[ProviderEvent, None]:
        """Events until everything pushed is answered after ``end()``, an error, or ``abort()``."""
        if self._started:
            raise RuntimeError("events() can be iterated only once")
        self._started = True
        self.start()
        if self._task is None:  # aborted before it ever started
            self._events.put_nowait(None)
        try:
            while (event := await self._events.get()) is not None:
                yield event
        finally:
            # A consumer that stops early must not leave the CLI running.
            await self.abort()

    async def abort(self) -> None:
        """Interrupt the turn and close the session; returns once the CLI process is gone."""
        self._aborted = True
        self._stop.set()
        if self._task is not None:
            await asyncio.shield(self._task)

    @property
    def closed(self) -> bool:
        """Its CLI has been shut down (or never started and never will)."""
        return self._task.done() if self._task is not None else self._aborted

    @property
    def session_id(self) -> str | None:
        """The SDK session id once the CLI announced it."""
        return self._session_id

    # -- the driver --------------------------------------------------------------------------------------------------

    async def _drive(self) -> None:
        """Run the session (once more if the early-started CLI ended first), then end the event stream.

        The task is never cancelled from outside: the SDK's shutdown (stdin EOF, wait, terminate, kill) only runs
        reliably when not interrupted by an asyncio cancellation.
        """
        try:
            await self._session()
            if self._restart:
                self._restart = False
                self._stderr.clear()
                # Nothing was answered, so every message sent to the ended CLI goes to the next one, in order.
                self._inbox = asyncio.Queue()
                for item in self._pending.items():
                    self._inbox.put_nowait(item)
                await _first_of(self._has_input.wait(), self._stop.wait())
                if not self._stop.is_set():
                    log.info("starting Claude Code again for the first message")
                    await self._session()
        finally:
            self._events.put_nowait(None)

    async def _session(self) -> None:
        """Connect one CLI, pump input and output until told to stop or it fails, then disconnect it."""
        client = ClaudeSDKClient(self._options)
        try:
            try:
                if self._prepare is not None:
                    await self._prepare()
                await client.connect()
            except Exception as exc:
                self._fail(exc)
                return
            if not self._stop.is_set():
                await self._converse(client)
        finally:
            try:
                await client.disconnect()
            except Exception:
                log.exception("closing the Claude Code session failed")

    async def _converse(self, client: ClaudeSDKClient) -> None:
        writer = asyncio.create_task(self._write(client), name="claude-writer")
        reader = asyncio.create_task(self._read(client), name="claude-reader")
        stopper = asyncio.create_task(self._stop.wait(), name="claude-stop")
        try:
            await asyncio.wait({writer, reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if self._aborted and self._pending and not self._restart:  # an idle CLI has no turn to interrupt
                await self._interrupt(client)
        finally:
            for task in (writer, reader, stopper):
                task.cancel()
            for task in (writer, reader, stopper):
                with contextlib.suppress(asyncio.CancelledError):
                    try:
                        await task
                    except Exception as exc:
                        self._fail(exc)

    async def _interrupt(self, client: ClaudeSDKClient) -> None:
        try:
            await asyncio.wait_for(client.interrupt(), INTERRUPT_TIMEOUT)
        except Exception as exc:  # the session is closed next anyway
            log.info("interrupting Claude Code did not complete: %s", exc)

    async def _write(self, client: ClaudeSDKClient) -> None:
        while True:
            message_id, text = await self._inbox.get()
            await client.query(_one_message(message_id, text))
            self._written = True
            while message_id in self._pending:
                self._answered.clear()
                await self._answered.wait()

    async def _read(self, client: ClaudeSDKClient) -> None:
        try:
            async for message in client.receive_messages():
                self._handle(message)
                if self._stop.is_set():
                    return
        except Exception as exc:
            self._fail(exc)
            return
        if not self._stop.is_set():
            self._fail(RuntimeError("Claude Code ended the session unexpectedly"))

    # -- messages -> events ------------------------------------------------------------------------------------------

    def _handle(self, message: Message) -> None:
        if self._written:
            self._may_restart = False  # the CLI is working on our message: from now on a failure is the user's
        if isinstance(message, StreamEvent):
            now = time.monotonic()
            if now - self._last_stream_activity >= STREAM_ACTIVITY_INTERVAL:
                self._last_stream_activity = now
                self._emit(ProviderEvent("activity"))
            return
        self._emit(ProviderEvent("activity"))
        if isinstance(message, AssistantMessage | UserMessage) and message.parent_tool_use_id is None and message.uuid:
            self._last_entry = message.uuid  # a subagent's messages (with a parent tool use) live in their own file
        if isinstance(message, SystemMessage):
            self._on_system(message)
        elif isinstance(message, AssistantMessage):
            if message.model and not message.model.startswith("<"):  # "<synthetic>" marks CLI-made error text
                self._model = message.model
        elif isinstance(message, ResultMessage):
            self._on_result(message)

    def _on_system(self, message: SystemMessage) -> None:
        if message.subtype == "init":
            session_id = message.data.get("session_id")
            if isinstance(session_id, str) and session_id != self._session_id:
                self._session_id = session_id
                # Not the new session: until a turn is answered there is nothing a retry should resume.
                self._emit(ProviderEvent("init", continuation=self._continuation()))
        elif message.subtype == "compact_boundary":
            meta = message.data.get("compact_metadata") or {}
            tokens = meta.get("pre_tokens")
            text = f"Context compacted ({tokens} tokens)." if isinstance(tokens, int) else "Context compacted."
            self._emit(ProviderEvent("compacted", text=text))

    def _on_result(self, message: ResultMessage) -> None:
        self._session_id = message.session_id or self._session_id
        usage = _usage(message.usage)
        if any(usage.values()):
            self._emit(ProviderEvent("usage", usage=usage, model=self._model))
        self._mark_answered(message)
        if message.is_error:
            self._fail_with(_result_error_text(message))
            return
        if self._session_id and self._last_entry:
            self._resume_point = ResumePoint(self._session_id, self._last_entry)
        self._emit(ProviderEvent("result", text=message.result or "", continuation=self._continuation()))
        self._check_finished()

    def _continuation(self) -> str | None:
        return self._resume_point.text() if self._resume_point is not None else None

    def _mark_answered(self, message: ResultMessage) -> None:
        answered = message.user_message_uuids or ([message.user_message_uuid] if message.user_message_uuid else [])
        if answered:
            for message_id in answered:
                self._pending.pop(message_id, None)
        elif message.origin is None and self._pending:
            # Results of local commands (e.g. /compact) may not name their message; they answer the oldest.
            self._pending.pop(next(iter(self._pending)))
        self._answered.set()

    # -- hooks -------------------------------------------------------------------------------------------------------

    def _hooks(self) -> dict[HookEvent, list[HookMatcher]]:
        return {
            "PreToolUse": [HookMatcher(hooks=[self._pre_tool_use])],
            "PostToolUse": [HookMatcher(hooks=[self._post_tool_use])],
            "PostToolUseFailure": [HookMatcher(hooks=[self._post_tool_use])],
            "PreCompact": [HookMatcher(hooks=[self._pre_compact])],
        }

    async def _pre_tool_use(self, data: HookInput, tool_use_id: str | None, context: HookContext) -> HookJSONOutput:
        fields = cast(dict[str, Any], data)
        name = str(fields.get("tool_name", ""))
        self._emit(ProviderEvent("tool_start", tool_name=name, tool_timeout_ms=self._timeout_of(name, fields)))
        return {}

    async def _post_tool_use(self, data: HookInput, tool_use_id: str | None, context: HookContext) -> HookJSONOutput:
        fields = cast(dict[str, Any], data)
        self._emit(ProviderEvent("tool_end", tool_name=str(fields.get("tool_name", ""))))
        return {}

    async def _pre_compact(self, data: HookInput, tool_use_id: str | None, context: HookContext) -> HookJSONOutput:
        fields = cast(dict[str, Any], data)
        transcript = fields.get("transcript_path")
        try:
            if transcript:
                archive_transcript(
                    Path(transcript), self._archive_dir, _now(self._timezone), assistant_name=self._assistant_name
                )
        except Exception:
            # Compaction goes ahead either way; losing the archive must not cost the conversation.
            log.exception("archiving transcript %s before compaction failed", transcript)
        return {}

    def _timeout_of(self, tool_name: str, fields: dict[str, Any]) -> int | None:
        if tool_name in self._tool_timeouts:
            return self._tool_timeouts[tool_name]
        if tool_name == "Bash":
            tool_input = fields.get("tool_input") or {}
            timeout = tool_input.get("timeout") if isinstance(tool_input, dict) else None
            return int(timeout) if isinstance(timeout, int | float) and timeout > 0 else BASH_DEFAULT_TIMEOUT_MS
        return None

    # -- plumbing ----------------------------------------------------------------------------------------------------

    def _enqueue(self, text: str) -> None:
        message_id = str(uuid.uuid4())
        self._pending[message_id] = text
        self._inbox.put_nowait((message_id, text))
        self._has_input.set()

    def _check_finished(self) -> None:
        if self._ended and not self._pending:
            self._stop.set()

    def _emit(self, event: ProviderEvent) -> None:
        self._events.put_nowait(event)

    def _fail(self, exc: BaseException) -> None:
        if self._restart:
            return  # the ended early CLI failing once more (its other task noticing too)
        if self._may_restart and not self._stop.is_set():
            self._may_restart = False
            self._restart = True
            log.warning("the early-started Claude Code ended before answering anything (%r; stderr tail: %s); "
                        "it is started again for the first message", exc, " | ".join(self._stderr))
            return
        log.warning("Claude Code session failed: %r; stderr tail: %s", exc, " | ".join(self._stderr))
        self._fail_with(_plain_error(exc, list(self._stderr)))

    def _fail_with(self, text: str) -> None:
        """One ``error`` event per query, then the query stops."""
        if not self._failed and not self._aborted:
            self._failed = True
            self._emit(ProviderEvent("error", text=text, gateway_lost=self._gateway_lost()))
        self._stop.set()

    def _on_stderr(self, line: str) -> None:
        self._stderr.append(line)
        log.debug("claude: %s", line)


async def _first_of(*waits: Awaitable[object]) -> None:
    """Return once any of ``waits`` finished; the others are cancelled."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _one_message(message_id: str, text: str) -> AsyncIterator[dict[str, Any]]:
    async def gen() -> AsyncIterator[dict[str, Any]]:
        yield {
            "type": "user",
            "message": {"role": "user", "content": text},
            "parent_tool_use_id": None,
            "uuid": message_id,
        }

    return gen()


def _usage(raw: dict[str, Any] | None) -> dict[str, int]:
    raw = raw or {}

    def number(key: str) -> int:
        value = raw.get(key)
        return int(value) if isinstance(value, int | float) else 0

    return {
        "input_tokens": number("input_tokens"),
        "output_tokens": number("output_tokens"),
        "cache_read_tokens": number("cache_read_input_tokens"),
        "cache_write_tokens": number("cache_creation_input_tokens"),
    }


def _result_error_text(message: ResultMessage) -> str:
    errors = [e.strip() for e in message.errors or [] if isinstance(e, str) and e.strip()]
    if errors:
        return "; ".join(errors)
    if message.result:
        return message.result
    if message.api_error_status:
        return f"The model API failed (HTTP {message.api_error_status})."
    return f"Claude Code stopped: {message.subtype}"


def _plain_error(exc: BaseException, stderr: list[str]) -> str:
    """A message for the user: the CLI's own words where it gave some, never a traceback."""
    if isinstance(exc, ResultError):
        if exc.errors:
            return "; ".join(exc.errors)
        if exc.result:
            return exc.result
    if isinstance(exc, CLINotFoundError):
        return "Claude Code is not installed in this container."
    if isinstance(exc, ProcessError):
        detail = next((line.strip() for line in reversed(stderr) if line.strip()), "")
        code = f" (exit code {exc.exit_code})" if exc.exit_code is not None else ""
        return f"Claude Code failed{code}: {detail}" if detail else f"Claude Code failed{code}."
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _now(timezone: str) -> datetime:
    try:
        return datetime.now(ZoneInfo(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        return datetime.now(ZoneInfo("UTC"))
