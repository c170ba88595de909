"""Read token usage out of model responses as they stream past, without touching the bytes.

The gateway forwards every chunk unchanged and also feeds it to a meter; the meter keeps only what it needs:
- non-streaming JSON (both APIs): the body is collected (up to ``MAX_JSON_BYTES``) and its ``usage`` read at the end;
- Anthropic SSE: ``message_start.message.usage`` then every ``message_delta.usage`` on top (later counts are totals);
- OpenAI SSE: the last chunk with a non-null ``usage`` (our openai provider asks for it with
  ``stream_options.include_usage``; the Responses API puts it in ``response.completed``).

Only lines that can hold usage are JSON-parsed, so a long stream of text deltas costs a substring test per line.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

MAX_JSON_BYTES = 16 * 1024 * 1024
"""A non-streaming body bigger than this is forwarded but not metered (model replies are far smaller)."""
MAX_SSE_LINE_BYTES = 4 * 1024 * 1024
"""An SSE line longer than this stops metering of that stream instead of growing a buffer without end."""


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call in one shape for both APIs; ``input_tokens`` excludes cached reads and writes."""

    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    """The part of ``cache_write_tokens`` written with Anthropic's 1-hour TTL (priced higher)."""
    web_search_requests: int = 0
    """Anthropic server-side web searches, billed per search."""
    audio_seconds: float = 0.0
    """Seconds of audio transcribed (transcription servers bill per minute)."""


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return max(int(value), 0)


def anthropic_usage(model: str, raw: dict[str, Any]) -> Usage:
    """Usage from an Anthropic ``usage`` object (input already excludes cache reads and writes)."""
    creation = raw.get("cache_creation")
    tools = raw.get("server_tool_use")
    return Usage(
        model=model,
        input_tokens=_int(raw.get("input_tokens")),
        output_tokens=_int(raw.get("output_tokens")),
        cache_read_tokens=_int(raw.get("cache_read_input_tokens")),
        cache_write_tokens=_int(raw.get("cache_creation_input_tokens")),
        cache_write_1h_tokens=_int(creation.get("ephemeral_1h_input_tokens")) if isinstance(creation, dict) else 0,
        web_search_requests=_int(tools.get("web_search_requests")) if isinstance(tools, dict) else 0,
    )


def openai_usage(model: str, raw: dict[str, Any]) -> Usage:
    """Usage from an OpenAI ``usage`` object: Chat Completions (``prompt_tokens``) or Responses (``input_tokens``).

    OpenAI counts cached tokens inside the prompt total, so they are subtracted to keep ``input_tokens`` uncached.
    """
    chat = "prompt_tokens" in raw
    prompt = raw.get("prompt_tokens" if chat else "input_tokens")
    output = raw.get("completion_tokens" if chat else "output_tokens")
    details = raw.get("prompt_tokens_details" if chat else "input_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return Usage(model=model, input_tokens=max(_int(prompt) - cached, 0), output_tokens=_int(output),
                 cache_read_tokens=cached)


class Meter(Protocol):
    """Fed every response chunk in order; asked once at the end."""

    def feed(self, chunk: bytes) -> None:
        """Look at one chunk (never keep a reference the caller could mutate)."""

    def result(self) -> Usage | None:
        """The call's usage, or None when the response did not report any."""


def _convert(api: str, model: str, raw: dict[str, Any]) -> Usage:
    return anthropic_usage(model, raw) if api == "anthropic" else openai_usage(model, raw)


class JsonMeter:
    """Collects a non-streaming JSON body and reads its top-level ``usage`` and ``model``."""

    def __init__(self, api: str) -> None:
        self._api = api
        self._chunks: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        """Keep the chunk until the body is complete."""
        if self._size > MAX_JSON_BYTES:
            return
        self._size += len(chunk)
        if self._size > MAX_JSON_BYTES:
            self._chunks.clear()
            log.warning("model gateway: a %s response over %d bytes was not metered", self._api, MAX_JSON_BYTES)
            return
        self._chunks.append(chunk)

    def result(self) -> Usage | None:
        """Parse the whole body once."""
        if not self._chunks:
            return None
        try:
            body = json.loads(b"".join(self._chunks))
        except ValueError:
            log.warning("model gateway: a %s JSON response could not be parsed for usage", self._api)
            return None
        if not isinstance(body, dict) or not isinstance(body.get("usage"), dict):
            return None
        return _convert(self._api, str(body.get("model") or ""), body["usage"])


class _SseMeter:
    """Splits a byte stream into lines and hands ``data:`` lines that may hold usage to ``_data``."""

    def __init__(self) -> None:
        self._tail = b""
        self._broken = False

    def feed(self, chunk: bytes) -> None:
        """Parse the complete lines; keep a partial last line for the next chunk."""
        if self._broken:
            return
        buffer = self._tail + chunk if self._tail else chunk
        lines = buffer.split(b"\n")
        self._tail = lines.pop()
        if len(self._tail) > MAX_SSE_LINE_BYTES:
            self._broken = True
            self._tail = b""
            log.warning("model gateway: an SSE line over %d bytes stopped metering of a stream", MAX_SSE_LINE_BYTES)
            return
        for line in lines:
            if line.startswith(b"data:") and self._wanted(line):
                try:
                    event = json.loads(line[5:])
                except ValueError:
                    continue
                if isinstance(event, dict):
                    self._data(event)

    def _wanted(self, line: bytes) -> bool:
        raise NotImplementedError

    def _data(self, event: dict[str, Any]) -> None:
        raise NotImplementedError


class AnthropicStreamMeter(_SseMeter):
    """``message_start`` gives the model and the input counts; each ``message_delta`` updates the totals."""

    def __init__(self) -> None:
        super().__init__()
        self._model = ""
        self._usage: dict[str, Any] = {}

    def _wanted(self, line: bytes) -> bool:
        return b"message_start" in line or b"message_delta" in line

    def _data(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message")
            if isinstance(message, dict):
                self._model = str(message.get("model") or self._model)
                if isinstance(message.get("usage"), dict):
                    self._usage = dict(message["usage"])
        elif kind == "message_delta" and isinstance(event.get("usage"), dict):
            self._usage.update((k, v) for k, v in event["usage"].items() if v is not None)

    def result(self) -> Usage | None:
        """The last totals seen."""
        return anthropic_usage(self._model, self._usage) if self._usage else None


class OpenAIStreamMeter(_SseMeter):
    """The last chunk (or ``response.completed`` event) carrying a non-null ``usage`` wins."""

    def __init__(self) -> None:
        super().__init__()
        self._model = ""
        self._usage: dict[str, Any] | None = None

    def _wanted(self, line: bytes) -> bool:
        return b'"usage"' in line and b'"usage":null' not in line and b'"usage": null' not in line

    def _data(self, event: dict[str, Any]) -> None:
        holder = event
        if not isinstance(event.get("usage"), dict) and isinstance(event.get("response"), dict):
            holder = event["response"]
        if isinstance(holder.get("usage"), dict):
            self._usage = holder["usage"]
            self._model = str(holder.get("model") or self._model)

    def result(self) -> Usage | None:
        """The last usage seen."""
        return openai_usage(self._model, self._usage) if self._usage is not None else None


class TranscriptionMeter(JsonMeter):
    """A transcription reply: the audio's length (``usage.seconds``, or ``duration`` of ``verbose_json``) or tokens.

    Every successful call yields a usage, even from a server that reports nothing (whisper.cpp), so each is counted.
    """

    def __init__(self) -> None:
        super().__init__("transcribe")

    def result(self) -> Usage | None:
        """Parse the whole body once; a body that is not JSON still counts as one call."""
        try:
            body = json.loads(b"".join(self._chunks)) if self._chunks else {}
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        usage = body.get("usage")
        raw: dict[str, Any] = usage if isinstance(usage, dict) else {}
        seconds = raw.get("seconds", body.get("duration"))
        seconds = float(seconds) if isinstance(seconds, int | float) and not isinstance(seconds, bool) else 0.0
        return Usage(model="", input_tokens=_int(raw.get("input_tokens")), output_tokens=_int(raw.get("output_tokens")),
                     audio_seconds=max(seconds, 0.0))


def meter_for(api: str, content_type: str) -> Meter | None:
    """The meter for a successful response of ``api`` (``anthropic``/``openai``), or None for bodies without usage."""
    if api == "transcribe":
        return TranscriptionMeter()
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "text/event-stream":
        return AnthropicStreamMeter() if api == "anthropic" else OpenAIStreamMeter()
    if kind == "application/json" or kind.endswith("+json"):
        return JsonMeter(api)
    return None
