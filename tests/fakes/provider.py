"""A deterministic provider for loop tests: scripted replies per pushed prompt, real tool calls, scripted failures.

It implements the ``Provider`` protocol exactly as the loop sees it: a query answers the first prompt and every pushed
one in order (one ``result`` each), stays open until ``end()`` and then finishes. A reply can call the ``ToolSpec``
handlers it was given (so our tools run for real against the session DBs), wait on a gate before answering (to push
follow-ups while a turn runs), or fail. Without a script it echoes: it answers the last message of the prompt to the
destination named in its ``from`` attribute. Everything it was given is recorded for assertions.

Usable as ``--provider tests.fakes.provider:ScriptedProvider`` for a runner started as a subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_runner.config import RunnerConfig
from agent_runner.providers.base import ProviderEvent
from agent_runner.tools.base import ToolError, ToolSpec

INVALID_MARKER = "No conversation found with session ID"


@dataclass
class ToolCall:
    """A tool the scripted model calls, with its arguments."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


TextFn = Callable[[list[str]], str]
"""Builds the reply text from the results of this reply's tool calls."""


@dataclass
class Reply:
    """One scripted answer to one prompt."""

    text: str | TextFn = ""
    tools: list[ToolCall] = field(default_factory=list)
    error: str | None = None
    gate: asyncio.Event | None = None
    """Answer only once this is set (the turn "runs" until then)."""
    usage: dict[str, int] = field(default_factory=lambda: {"input_tokens": 10, "output_tokens": 5})
    continuation: str | None = None
    """The continuation the result carries (the conversation's id when None)."""


Script = str | Reply | Callable[[str], "str | Reply"]

_FROM = re.compile(r'from="([^"]+)"')
_BODY = re.compile(r">([^<]*)</message>")


def echo(prompt: str) -> str:
    """Answer the last message of the prompt, to where it came from."""
    names = _FROM.findall(prompt)
    bodies = _BODY.findall(prompt)
    if not names:
        return "nobody to answer"
    return f'<message to="{names[-1]}">echo: {bodies[-1] if bodies else ""}</message>'


class ScriptedQuery:
    """One conversation; answers prompts in push order."""

    def __init__(self, provider: ScriptedProvider, prompt: str, continuation: str | None,
                 tools: list[ToolSpec]) -> None:
        self._provider = provider
        self._continuation = continuation
        self._tools = {t.name: t for t in tools}
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._inbox.put_nowait(prompt)
        self._aborted = asyncio.Event()
        self.ended = False
        self.finished = False
        """True once ``events()`` has returned (after ``end()``, an error or an abort)."""
        self.aborted = False

    def push(self, text: str) -> None:
        if self.ended:
            raise RuntimeError("push after end()")
        self._provider.prompts.append(text)
        self._inbox.put_nowait(text)

    def end(self) -> None:
        self.ended = True
        self._inbox.put_nowait(None)

    async def abort(self) -> None:
        self.aborted = True
        self._aborted.set()
        self._inbox.put_nowait(None)

    async def events(self) -> AsyncIterator[ProviderEvent]:
        try:
            async for event in self._run():
                yield event
        finally:
            self.finished = True

    async def _run(self) -> AsyncIterator[ProviderEvent]:
        provider = self._provider
        if self._continuation in provider.invalid_continuations:
            yield ProviderEvent(kind="error", text=f"{INVALID_MARKER} {self._continuation}")
            return
        conversation = self._continuation or provider.new_conversation_id()
        yield ProviderEvent(kind="init", continuation=conversation)
        while not self._aborted.is_set():
            prompt = await self._inbox.get()
            if prompt is None:
                if self._aborted.is_set() or (self.ended and self._inbox.empty()):
                    return
                continue
            reply = provider.next_reply(prompt)
            if reply.gate is not None and not await self._wait_gate(reply.gate):
                return
            yield ProviderEvent(kind="activity")
            results: list[str] = []
            for call in reply.tools:
                spec = self._tools.get(call.name)
                yield ProviderEvent(kind="tool_start", tool_name=call.name,
                                    tool_timeout_ms=spec.declared_timeout_ms if spec else None)
                if spec is None:
                    result = f"ToolError: no tool {call.name}"
                else:
                    try:
                        result = await spec.handler(dict(call.args))
                    except ToolError as err:
                        result = f"ToolError: {err}"
                results.append(result)
                provider.tool_results.append((call.name, result))
                yield ProviderEvent(kind="tool_end", tool_name=call.name)
            if reply.error is not None:
                yield ProviderEvent(kind="error", text=reply.error)
                return
            yield ProviderEvent(kind="usage", usage=dict(reply.usage), model="scripted-model")
            text = reply.text(results) if callable(reply.text) else reply.text
            yield ProviderEvent(kind="result", text=text, continuation=reply.continuation or conversation)

    async def _wait_gate(self, gate: asyncio.Event) -> bool:
        opened = asyncio.ensure_future(gate.wait())
        aborted = asyncio.ensure_future(self._aborted.wait())
        try:
            await asyncio.wait({opened, aborted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (opened, aborted):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return not self._aborted.is_set()


class ScriptedProvider:
    """The ``Provider`` protocol with scripted answers; see the module docstring."""

    name = "scripted"

    def __init__(
        self,
        config: RunnerConfig | None = None,
        *,
        replies: Iterable[Script] = (),
        native_slash_commands: bool = False,
        invalid_continuations: Iterable[str] = (),
    ) -> None:
        self.config = config
        self.supports_native_slash_commands = native_slash_commands
        self.invalid_continuations = set(invalid_continuations)
        self.replies: deque[Script] = deque(replies)
        self.prompts: list[str] = []
        """Every prompt given, first prompts and pushes alike, in order."""
        self.continuations: list[str | None] = []
        """The continuation each query was started with."""
        self.system_prompts: list[str] = []
        self.cwds: list[Path] = []
        self.tool_names: list[list[str]] = []
        self.tool_results: list[tuple[str, str]] = []
        self.queries: list[ScriptedQuery] = []
        self.closed = False
        self._conversations = 0

    def new_conversation_id(self) -> str:
        self._conversations += 1
        return f"conv-{self._conversations}"

    def next_reply(self, prompt: str) -> Reply:
        script: Script = self.replies.popleft() if self.replies else echo
        if callable(script) and not isinstance(script, Reply):
            script = script(prompt)
        return Reply(text=script) if isinstance(script, str) else script

    def query(self, *, prompt: str, continuation: str | None, cwd: Path, system_prompt: str,
              tools: list[ToolSpec]) -> ScriptedQuery:
        self.prompts.append(prompt)
        self.continuations.append(continuation)
        self.system_prompts.append(system_prompt)
        self.cwds.append(cwd)
        self.tool_names.append([t.name for t in tools])
        query = ScriptedQuery(self, prompt, continuation, tools)
        self.queries.append(query)
        return query

    def is_session_invalid(self, error: BaseException | str) -> bool:
        return INVALID_MARKER in str(error)

    async def aclose(self) -> None:
        self.closed = True


__all__ = ["INVALID_MARKER", "Reply", "ScriptedProvider", "ScriptedQuery", "ToolCall", "echo"]
