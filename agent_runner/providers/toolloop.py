"""The tool loop shared by the ``anthropic`` and ``openai`` providers.

We own the conversation here (the Claude Code CLI owns it for the ``claude`` provider): a list of provider-neutral
turns, serialised as the continuation so a restarted runner resumes where it stopped. Each pushed user message is
answered by calling the model (streaming), running the tools it asks for and feeding the results back until it stops
asking. A model adapter (``ModelClient``) only translates the neutral history to its API and back.

Turn shapes (JSON, also the continuation's ``history``)::

    {"role": "user", "text": "..."}
    {"role": "assistant", "text": "...", "tool_calls": [{"id": "...", "name": "...", "input": {...}}]}
    {"role": "tool", "results": [{"id": "...", "name": "...", "content": "...", "is_error": false}]}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agent_runner.providers.base import ProviderEvent
from agent_runner.tools.base import ToolError, ToolSpec

log = logging.getLogger(__name__)

Turn = dict[str, Any]

CONTINUATION_FORMAT = "nanoclaw-toolloop"
CONTINUATION_VERSION = 1
MAX_TOOL_ROUNDS = 25
"""Model calls that ask for tools, per answered message, before we stop the turn."""
ACTIVITY_INTERVAL = 1.0
"""Seconds between ``activity`` events while a response streams (each one is a heartbeat touch)."""
MAX_TOOL_RESULT_CHARS = 100_000
"""Safety cap for what any tool may put into the history (built-in tools cap lower themselves)."""
MAX_HISTORY_CHARS = 600_000
"""Above this (about 150k tokens) the oldest exchanges are dropped so requests keep fitting the context window."""
INVALID_CONTINUATION = "The saved conversation could not be resumed"
INTERRUPTED_TOOL = "The tool run was interrupted (the agent restarted); it may or may not have completed."


class ContinuationError(ValueError):
    """The stored continuation is not ours or is damaged; the runner should clear it and start fresh."""


class ModelCallError(Exception):
    """A model call failed; the message is written for the user (no stack traces, no raw JSON).

    ``gateway_lost``: the gateway socket could not be reached at all — the host is gone, and the loop keeps the work
    rather than telling the user.
    """

    def __init__(self, message: str, *, gateway_lost: bool = False) -> None:
        super().__init__(message)
        self.gateway_lost = gateway_lost


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call the model asked for; ``input_error`` when its arguments could not be parsed."""

    id: str
    name: str
    input: dict[str, Any]
    input_error: str | None = None


def parse_tool_call(call_id: str, name: str, arguments: str) -> ToolCall:
    """A call whose arguments streamed in as JSON text (empty means none); a bad one is reported to the model."""
    raw = arguments.strip() or "{}"
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        return ToolCall(id=call_id, name=name, input={}, input_error=f"{exc} in {raw[:200]!r}")
    if not isinstance(parsed, dict):
        return ToolCall(id=call_id, name=name, input={}, input_error=f"expected an object, got {raw[:200]!r}")
    return ToolCall(id=call_id, name=name, input=parsed)


@dataclass(frozen=True, slots=True)
class ModelReply:
    """One model call's outcome in neutral form."""

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: dict[str, int] | None = None
    """input_tokens, output_tokens, cache_read_tokens, cache_write_tokens; None when the server reported none."""
    stop_reason: str | None = None


class ModelClient(Protocol):
    """Talks to one model API for the lifetime of a query (it owns its HTTP connections)."""

    model: str

    async def complete(
        self, *, system: str, history: list[Turn], tools: list[ToolSpec], on_delta: Callable[[], None]
    ) -> ModelReply:
        """Stream one response to ``history``; call ``on_delta`` per streamed piece; raise ``ModelCallError``."""

    async def aclose(self) -> None:
        """Release the HTTP client."""


ClientFactory = Callable[[], ModelClient]


# -- continuation --------------------------------------------------------------------------------------------------


def dump_continuation(history: list[Turn]) -> str:
    """The resumable state: the whole neutral history."""
    return json.dumps(
        {"format": CONTINUATION_FORMAT, "version": CONTINUATION_VERSION, "history": history}, ensure_ascii=False
    )


def load_continuation(continuation: str | None) -> list[Turn]:
    """Parse and validate a continuation; None or empty starts a new conversation."""
    if not continuation:
        return []
    try:
        data = json.loads(continuation)
    except ValueError as exc:
        raise ContinuationError(f"{INVALID_CONTINUATION}: it is not JSON ({exc}).") from exc
    if not isinstance(data, dict) or data.get("format") != CONTINUATION_FORMAT:
        raise ContinuationError(f"{INVALID_CONTINUATION}: it was written by another provider.")
    if data.get("version") != CONTINUATION_VERSION:
        raise ContinuationError(f"{INVALID_CONTINUATION}: unknown version {data.get('version')!r}.")
    history = data.get("history")
    if not isinstance(history, list) or not all(_valid_turn(t) for t in history):
        raise ContinuationError(f"{INVALID_CONTINUATION}: its history is damaged.")
    return _repair(history)


def _valid_turn(turn: Any) -> bool:
    if not isinstance(turn, dict):
        return False
    role = turn.get("role")
    if role == "user":
        return isinstance(turn.get("text"), str)
    if role == "assistant":
        calls = turn.get("tool_calls", [])
        return (
            isinstance(turn.get("text", ""), str)
            and isinstance(calls, list)
            and all(
                isinstance(c, dict)
                and isinstance(c.get("id"), str)
                and isinstance(c.get("name"), str)
                and isinstance(c.get("input"), dict)
                for c in calls
            )
        )
    if role == "tool":
        results = turn.get("results")
        return isinstance(results, list) and all(
            isinstance(r, dict) and isinstance(r.get("id"), str) and isinstance(r.get("content"), str)
            for r in results
        )
    return False


def _repair(history: list[Turn]) -> list[Turn]:
    """Answer tool calls left without results (a crash mid-tool), so the APIs accept the history again."""
    repaired: list[Turn] = []
    for index, turn in enumerate(history):
        repaired.append(turn)
        calls = turn.get("tool_calls") or []
        if turn["role"] != "assistant" or not calls:
            continue
        following = history[index + 1] if index + 1 < len(history) else None
        answered = {r["id"] for r in following["results"]} if following and following["role"] == "tool" else set()
        missing = [c for c in calls if c["id"] not in answered]
        if not missing:
            continue
        filler = [{"id": c["id"], "name": c["name"], "content": INTERRUPTED_TOOL, "is_error": True} for c in missing]
        if following is not None and following["role"] == "tool":
            following["results"] = [*following["results"], *filler]
        else:
            repaired.append({"role": "tool", "results": filler})
    return repaired


def is_continuation_error(error: BaseException | str) -> bool:
    """True for an unreadable continuation, given the exception or the ``error`` event's text."""
    if isinstance(error, ContinuationError):
        return True
    return isinstance(error, str) and error.startswith(INVALID_CONTINUATION)


def trim_history(history: list[Turn], max_chars: int = MAX_HISTORY_CHARS) -> tuple[list[Turn], int]:
    """Drop the oldest exchanges (always at a user message) until the history fits; returns it and the dropped size."""
    sizes = [len(json.dumps(t, ensure_ascii=False)) for t in history]
    total = sum(sizes)
    start = 0
    while total > max_chars:
        cut = next((i for i in range(start + 1, len(history)) if history[i]["role"] == "user"), None)
        if cut is None:
            break
        total -= sum(sizes[start:cut])
        start = cut
    dropped = sum(sizes[:start])
    return history[start:], dropped


# -- error messages ------------------------------------------------------------------------------------------------


def http_error_message(status: int, detail: str) -> str:
    """A plain sentence for a model-service HTTP error."""
    detail = detail.strip() or "no details"
    if status == 429:
        return f"The model service is rate-limiting requests ({status}): {detail}"
    if status >= 500:
        return f"The model service failed ({status}): {detail}"
    return f"The model service refused the request ({status}): {detail}"


def error_detail(body: object, fallback: str) -> str:
    """The human part of an API error body (both Anthropic's and OpenAI's shapes)."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return fallback


# -- the query -----------------------------------------------------------------------------------------------------


class ToolLoopQuery:
    """A live conversation driven by our tool loop; implements ``agent_runner.providers.base.Query``."""

    def __init__(
        self,
        *,
        provider_name: str,
        make_client: ClientFactory,
        prompt: str,
        continuation: str | None,
        system_prompt: str,
        tools: list[ToolSpec],
        max_tool_rounds: int = MAX_TOOL_ROUNDS,
        max_history_chars: int = MAX_HISTORY_CHARS,
    ) -> None:
        self._provider_name = provider_name
        self._make_client = make_client
        self._continuation = continuation
        self._system = system_prompt
        self._tools = unique_tools(tools)
        self._by_name = _index_tools(tools)
        self._max_rounds = max_tool_rounds
        self._max_history_chars = max_history_chars
        self._inputs: asyncio.Queue[str | None] = asyncio.Queue()
        self._inputs.put_nowait(prompt)
        self._out: asyncio.Queue[ProviderEvent | None] = asyncio.Queue()
        self._ended = False
        self._aborted = False
        self._task: asyncio.Task[None] | None = None
        self._last_activity = 0.0
        self._model = ""

    def push(self, text: str) -> None:
        """Queue a follow-up user message; it is answered after the current one."""
        if self._ended:
            log.warning("%s: message pushed after end() ignored", self._provider_name)
            return
        self._inputs.put_nowait(text)

    def end(self) -> None:
        """No more input; events stop after the pending messages are answered."""
        if not self._ended:
            self._ended = True
            self._inputs.put_nowait(None)

    async def events(self) -> AsyncIterator[ProviderEvent]:
        """Run the loop in an owned task and relay its events; leaving early cancels the task."""
        if self._aborted:
            return
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"{self._provider_name}-toolloop")
        try:
            while (event := await self._out.get()) is not None:
                yield event
        finally:
            await self._cancel()

    async def abort(self) -> None:
        """Stop at once: the in-flight model call or tool is cancelled."""
        self._aborted = True
        self._ended = True
        await self._cancel()
        self._out.put_nowait(None)

    async def _cancel(self) -> None:
        task = self._task
        if task is None or task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def _emit(self, kind: Any, **fields: Any) -> None:
        self._out.put_nowait(ProviderEvent(kind=kind, **fields))

    def _on_delta(self) -> None:
        now = time.monotonic()
        if now - self._last_activity >= ACTIVITY_INTERVAL:
            self._last_activity = now
            self._emit("activity")

    async def _run(self) -> None:
        try:
            await self._converse()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("%s tool loop failed", self._provider_name)
            self._emit("error", text=f"The {self._provider_name} provider failed unexpectedly: {exc}")
        finally:
            self._out.put_nowait(None)

    async def _converse(self) -> None:
        try:
            history = load_continuation(self._continuation)
        except ContinuationError as exc:
            log.warning("%s: %s", self._provider_name, exc)
            self._emit("error", text=str(exc))
            return
        try:
            client = self._make_client()
        except Exception as exc:
            log.exception("%s: cannot create the model client", self._provider_name)
            self._emit("error", text=f"The {self._provider_name} provider is not configured correctly: {exc}")
            return
        self._model = client.model
        self._emit("init", continuation=dump_continuation(history), model=self._model)
        try:
            while (text := await self._inputs.get()) is not None:
                answered = await self._answer(client, history, text)
                if answered is None:
                    return
                history = answered
        finally:
            await client.aclose()

    async def _answer(self, client: ModelClient, history: list[Turn], text: str) -> list[Turn] | None:
        """One user message to a final reply; the new history, or None after an ``error`` event (history unchanged)."""
        working = [*history, {"role": "user", "text": text}]
        texts: list[str] = []
        rounds = 0
        while True:
            try:
                reply = await client.complete(
                    system=self._system, history=working, tools=self._tools, on_delta=self._on_delta
                )
            except ModelCallError as exc:
                log.warning("%s model call failed: %s", self._provider_name, exc)
                self._emit("error", text=str(exc), gateway_lost=exc.gateway_lost)
                return None
            if reply.usage is not None:
                self._emit("usage", usage=reply.usage, model=self._model)
            calls = [{"id": c.id, "name": c.name, "input": c.input} for c in reply.tool_calls]
            working.append({"role": "assistant", "text": reply.text, "tool_calls": calls})
            if reply.text.strip():
                texts.append(reply.text.strip())
            if not reply.tool_calls:
                break
            results = [await self._run_tool(call) for call in reply.tool_calls]
            working.append({"role": "tool", "results": results})
            rounds += 1
            if rounds >= self._max_rounds:
                log.warning("%s: stopped after %d tool rounds", self._provider_name, rounds)
                texts.append(
                    f"(Stopped: the model asked for tools {rounds} times in a row without finishing its answer. "
                    "Send another message to let it continue.)"
                )
                break
        trimmed, dropped = trim_history(working, self._max_history_chars)
        if dropped:
            self._emit("compacted", text=f"Context compacted ({dropped // 4} tokens dropped).")
        self._emit("result", text="\n\n".join(texts), continuation=dump_continuation(trimmed), model=self._model)
        return trimmed

    async def _run_tool(self, call: ToolCall) -> dict[str, Any]:
        """Run one tool; every failure becomes an error result the model reads, never a crash."""
        spec = self._by_name.get(call.name)
        self._emit("tool_start", tool_name=call.name, tool_timeout_ms=spec.declared_timeout_ms if spec else None)
        is_error = True
        try:
            if spec is None:
                content = f"Unknown tool {call.name!r}. Available tools: {', '.join(sorted(self._by_name))}."
            elif call.input_error is not None:
                content = f"The arguments for {call.name} were not valid JSON: {call.input_error}"
            elif missing := _missing_required(spec, call.input):
                content = f"Missing required parameter(s) for {call.name}: {', '.join(missing)}."
            else:
                content = await spec.handler(call.input)
                is_error = False
        except ToolError as exc:
            log.info("tool %s refused: %s", call.name, exc)
            content = str(exc) or f"{call.name} failed."
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("tool %s raised", call.name)
            content = f"{call.name} failed: {type(exc).__name__}: {exc}"
        finally:
            self._emit("tool_end", tool_name=call.name)
        if len(content) > MAX_TOOL_RESULT_CHARS:
            omitted = len(content) - MAX_TOOL_RESULT_CHARS
            content = content[:MAX_TOOL_RESULT_CHARS] + f"\n[... {omitted} more characters not shown]"
        return {"id": call.id, "name": call.name, "content": content, "is_error": is_error}


def _index_tools(tools: list[ToolSpec]) -> dict[str, ToolSpec]:
    """Later specs win on a name clash (ours are passed after the built-ins)."""
    by_name: dict[str, ToolSpec] = {}
    for spec in tools:
        if spec.name in by_name:
            log.warning("tool %s defined twice; the later definition is used", spec.name)
        by_name[spec.name] = spec
    return by_name


def unique_tools(tools: list[ToolSpec]) -> list[ToolSpec]:
    """The tool list the model sees: one spec per name, the later one winning, in first-seen order."""
    by_name = _index_tools(tools)
    seen: dict[str, ToolSpec] = {}
    for spec in tools:
        seen.setdefault(spec.name, by_name[spec.name])
    return list(seen.values())


def _missing_required(spec: ToolSpec, arguments: dict[str, Any]) -> list[str]:
    required = spec.input_schema.get("required", [])
    return [name for name in required if isinstance(name, str) and name not in arguments]


def usage_numbers(input_tokens: int, output_tokens: int, cache_read: int, cache_write: int) -> dict[str, int]:
    """The usage dict every provider emits."""
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
    }


def tool_cwd_note(cwd: Path) -> str:
    """Appended to the system prompt so the model knows where relative paths of the built-in tools point."""
    return f"\n\nThe built-in file and shell tools run in {cwd}; relative paths resolve there."
