"""Streams pass through byte for byte and chunk by chunk; a container hanging up cuts the upstream call too."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from nanoclaw_app.db import usage as usage_db
from nanoclaw_app.db.database import Database
from tests.unit.gateway.conftest import CLAUDE, TIMEOUT, StartGateway
from tests.unit.gateway.scripted import ScriptedUpstream


def sse(event: str, data: dict[str, object], *, newline: bytes = b"\n") -> bytes:
    body = f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
    return body.replace(b"\n", newline)


START = sse("message_start", {"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": CLAUDE, "content": [], "stop_reason": None,
    "usage": {"input_tokens": 1000, "output_tokens": 1, "cache_read_input_tokens": 2000,
              "cache_creation_input_tokens": 0}}})
DELTA = sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                    "delta": {"type": "text_delta", "text": "Grüße, \"usage\" message_delta 👋"}},
            newline=b"\r\n")
END = sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                            "usage": {"output_tokens": 500}}) + sse("message_stop", {"type": "message_stop"})


@pytest.fixture
async def upstream() -> AsyncIterator[ScriptedUpstream]:
    server = ScriptedUpstream()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_sse_arrives_byte_identical_and_each_event_before_the_upstream_is_done(
        start_gateway: StartGateway, upstream: ScriptedUpstream, db: Database, transport: str) -> None:
    gate = asyncio.Event()
    # Split awkwardly: inside a multi-byte character and inside the usage line, with CRLF line ends in between.
    middle = DELTA.index("👋".encode()) + 2
    usage_at = END.index(b"output_tokens") + 5
    upstream.reply = [START, gate, DELTA[:middle], DELTA[middle:] + END[:usage_at], END[usage_at:]]
    gw = await start_gateway(transport=transport, anthropic_base_url=upstream.url)
    http = await gw.http()
    token = gw.grant("sess-s", "agent-1")

    async with asyncio.timeout(TIMEOUT), http.stream(
            "POST", "/anthropic/v1/messages", headers={"x-api-key": token},
            json={"model": CLAUDE, "max_tokens": 600, "stream": True, "messages": []}) as response:
        chunks = response.aiter_raw()
        received = await anext(chunks)
        while len(received) < len(START):
            received += await anext(chunks)
        first_event_arrived_early = received == START and not upstream.finished.is_set()
        gate.set()
        async for chunk in chunks:
            received += chunk

    assert first_event_arrived_early
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert received == upstream.body
    await gw.event("usage.recorded")
    (call,) = await usage_db.calls_of_session(db, "sess-s")
    assert (call.input_tokens, call.cache_read_tokens, call.output_tokens) == (1000, 2000, 500)


async def test_a_container_hanging_up_mid_stream_cuts_the_upstream_and_keeps_what_was_used(
        start_gateway: StartGateway, upstream: ScriptedUpstream, db: Database) -> None:
    gate, never = asyncio.Event(), asyncio.Event()
    upstream.reply = [START, gate, DELTA, never, END]
    gw = await start_gateway(anthropic_base_url=upstream.url)
    http = await gw.http()

    async with asyncio.timeout(TIMEOUT):
        async with http.stream("POST", "/anthropic/v1/messages", headers={"x-api-key": gw.grant("sess-h", "a")},
                               json={"model": CLAUDE, "stream": True, "messages": []}) as response:
            await anext(response.aiter_raw())
        gate.set()  # the next chunk shows the gateway its container is gone
        await upstream.hung_up.wait()
        event = await gw.event("gateway.call")
        await gw.event("usage.recorded")

    assert not upstream.finished.is_set()
    assert event.data["complete"] is False
    (call,) = await usage_db.calls_of_session(db, "sess-h")
    assert (call.input_tokens, call.output_tokens) == (1000, 1)


async def test_an_upstream_error_keeps_its_status_body_and_headers_without_duplicates(
        start_gateway: StartGateway, upstream: ScriptedUpstream) -> None:
    body = json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}).encode()
    upstream.reply = [body]
    upstream.status = 529
    upstream.content_type = "application/json"
    gw = await start_gateway(anthropic_base_url=upstream.url)
    http = await gw.http()

    response = await http.post("/anthropic/v1/messages", headers={"x-api-key": gw.grant()}, json={})

    assert response.status_code == 529
    assert response.content == body
    assert response.headers["content-type"] == "application/json"
    assert len(response.headers.get_list("date")) == len(response.headers.get_list("server")) == 1
