"""Usage is read from both APIs' JSON and SSE replies, however the bytes are split into chunks."""

from __future__ import annotations

import json

import pytest

from nanoclaw_app.gateway.metering import JsonMeter, Meter, Usage, meter_for


def sse(api: str) -> Meter:
    meter = meter_for(api, "text/event-stream; charset=utf-8")
    assert meter is not None
    return meter


def feed(meter: Meter, body: bytes, size: int) -> Usage | None:
    for start in range(0, len(body), size):
        meter.feed(body[start:start + size])
    return meter.result()


def data(obj: object) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()


ANTHROPIC_STREAM = (
    b"event: message_start\n" + data({"type": "message_start", "message": {
        "model": "claude-opus-4-8", "usage": {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 7,
                                              "cache_creation_input_tokens": 300,
                                              "cache_creation": {"ephemeral_5m_input_tokens": 100,
                                                                 "ephemeral_1h_input_tokens": 200}}}})
    + b"event: content_block_delta\n" + data({"type": "content_block_delta", "delta": {"text": "message_delta"}})
    + b"event: message_delta\n" + data({"type": "message_delta", "usage": {
        "output_tokens": 42, "input_tokens": None, "server_tool_use": {"web_search_requests": 2}}})
    + b"event: message_stop\n" + data({"type": "message_stop"})
)

OPENAI_STREAM = (
    data({"model": "gpt-5.4", "choices": [{"delta": {"content": "hi"}}], "usage": None}).replace(b": null", b":null")
    + data({"model": "gpt-5.4", "choices": [{"delta": {}, "finish_reason": "stop"}], "usage": None})
    + data({"model": "gpt-5.4", "choices": [], "usage": {"prompt_tokens": 120, "completion_tokens": 30,
                                                          "prompt_tokens_details": {"cached_tokens": 100}}})
    + b"data: [DONE]\n\n"
)


@pytest.mark.parametrize("size", [1, 7, 64, 100_000])
def test_anthropic_stream_usage_combines_start_and_delta_at_any_chunking(size: int) -> None:
    usage = feed(sse("anthropic"), ANTHROPIC_STREAM, size)

    assert usage == Usage(model="claude-opus-4-8", input_tokens=10, output_tokens=42, cache_read_tokens=7,
                          cache_write_tokens=300, cache_write_1h_tokens=200, web_search_requests=2)


@pytest.mark.parametrize("size", [1, 13, 100_000])
def test_openai_stream_usage_is_the_final_chunk_with_cached_tokens_split_out(size: int) -> None:
    usage = feed(sse("openai"), OPENAI_STREAM, size)

    assert usage == Usage(model="gpt-5.4", input_tokens=20, output_tokens=30, cache_read_tokens=100)


def test_openai_responses_api_stream_reports_usage_in_response_completed() -> None:
    body = (data({"type": "response.created", "response": {"model": "gpt-6-sol", "usage": None}})
            + data({"type": "response.completed", "response": {"model": "gpt-6-sol", "usage": {
                "input_tokens": 50, "output_tokens": 5, "input_tokens_details": {"cached_tokens": 10}}}}))

    assert feed(sse("openai"), body, 9) == Usage(
        model="gpt-6-sol", input_tokens=40, output_tokens=5, cache_read_tokens=10)


def test_json_replies_of_both_apis_are_metered() -> None:
    claude = json.dumps({"model": "claude-haiku-4-5", "usage": {"input_tokens": 3, "output_tokens": 4}}).encode()
    gpt = json.dumps({"model": "gpt-4o", "usage": {"prompt_tokens": 9, "completion_tokens": 2}}).encode()

    assert feed(JsonMeter("anthropic"), claude, 5) == Usage(model="claude-haiku-4-5", input_tokens=3, output_tokens=4)
    assert feed(JsonMeter("openai"), gpt, 5) == Usage(model="gpt-4o", input_tokens=9, output_tokens=2)


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"data": []}', b'{"usage": "lots"}'])
def test_replies_without_usable_usage_report_none(body: bytes) -> None:
    assert feed(JsonMeter("openai"), body, 4) is None
    assert feed(sse("anthropic"), body, 4) is None


def test_only_json_and_sse_bodies_are_metered() -> None:
    assert meter_for("anthropic", "application/json") is not None
    assert meter_for("openai", "application/problem+json") is not None
    assert meter_for("openai", "application/octet-stream") is None
    assert meter_for("openai", "") is None
