"""Every call through the gateway is recorded once, with its tokens and cost, for both APIs, streaming or not."""

from __future__ import annotations

from typing import Any

import pytest

from nanoclaw_app.db import usage as usage_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.gateway.metering import Usage
from nanoclaw_app.gateway.pricing import PriceBook
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI
from tests.unit.gateway.conftest import CLAUDE, GPT, StartGateway

# What the fakes report on every call, in the gateway's terms (OpenAI's 26 prompt tokens include 5 cached ones).
ANTHROPIC_CALL = Usage(model=CLAUDE, input_tokens=21, output_tokens=13, cache_read_tokens=5, cache_write_tokens=3)
OPENAI_CALL = Usage(model=GPT, input_tokens=21, output_tokens=13, cache_read_tokens=5)


def expected_cost(usage: Usage) -> float:
    return PriceBook().cost(usage, local=False)


def as_recorded(usage: Usage, provider: str) -> tuple[object, ...]:
    return (provider, usage.model, usage.input_tokens, usage.output_tokens, usage.cache_read_tokens,
            usage.cache_write_tokens, pytest.approx(expected_cost(usage)))


async def test_each_call_of_both_apis_is_recorded_with_tokens_and_cost(
        start_gateway: StartGateway, db: Database, transport: str) -> None:
    gw = await start_gateway(transport=transport)
    token = gw.grant("sess-9", "agent-9")
    claude = await gw.anthropic(token)
    gpt = await gw.openai(token)
    say: Any = [{"role": "user", "content": "hi"}]

    await claude.messages.create(model=CLAUDE, max_tokens=20, messages=say)
    await gw.event("usage.recorded")
    async with claude.messages.stream(model=CLAUDE, max_tokens=20, messages=say) as stream:
        await stream.get_final_message()
    await gw.event("usage.recorded")
    await gpt.chat.completions.create(model=GPT, messages=say)
    await gw.event("usage.recorded")
    chunks = await gpt.chat.completions.create(model=GPT, messages=say, stream=True,
                                               stream_options={"include_usage": True})
    async for _ in chunks:
        pass
    await gw.event("usage.recorded")

    calls = await usage_db.calls_of_session(db, "sess-9")
    assert [(c.provider, c.model, c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens,
             c.cost_usd) for c in calls] == [
        as_recorded(ANTHROPIC_CALL, "anthropic"),
        as_recorded(ANTHROPIC_CALL, "anthropic"),
        as_recorded(OPENAI_CALL, "openai"),
        as_recorded(OPENAI_CALL, "openai"),
    ]
    assert {c.agent_group_id for c in calls} == {"agent-9"}
    assert expected_cost(ANTHROPIC_CALL) > 0
    assert expected_cost(OPENAI_CALL) > 0
    assert gw.gateway.spent_today_usd == pytest.approx(sum(c.cost_usd for c in calls))


async def test_the_call_event_tells_the_activity_page_what_happened(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    claude = await gw.anthropic(gw.grant("sess-1", "agent-1"))

    await claude.messages.create(model=CLAUDE, max_tokens=20, messages=[{"role": "user", "content": "x"}])
    event = await gw.event("gateway.call")

    assert event.data["session_id"] == "sess-1"
    assert event.data["agent_group_id"] == "agent-1"
    assert event.data["provider"] == "anthropic"
    assert event.data["model"] == CLAUDE
    assert event.data["status"] == 200
    assert event.data["complete"] is True
    assert event.data["output_tokens"] == 13
    assert event.data["cost_usd"] == pytest.approx(expected_cost(ANTHROPIC_CALL))
    assert all("ncgw-" not in str(value) for value in event.data.values())


async def test_a_local_model_the_price_list_does_not_know_is_recorded_at_no_cost(
        start_gateway: StartGateway, db: Database, fake_openai: FakeOpenAI) -> None:
    gw = await start_gateway()
    gpt = await gw.openai(gw.grant("sess-local", "agent-1"))

    await gpt.chat.completions.create(model="llama3.2:latest", messages=[{"role": "user", "content": "x"}])
    await gw.event("usage.recorded")

    (call,) = await usage_db.calls_of_session(db, "sess-local")
    assert (call.model, call.input_tokens, call.output_tokens, call.cost_usd) == ("llama3.2:latest", 21, 13, 0.0)


async def test_a_failed_upstream_call_records_nothing(
        start_gateway: StartGateway, db: Database, fake_anthropic: FakeAnthropic) -> None:
    from tests.fakes.anthropic_server import Fail

    gw = await start_gateway()
    http = await gw.http()
    fake_anthropic.script(Fail(529, "overloaded"))

    response = await http.post("/anthropic/v1/messages", headers={"x-api-key": gw.grant("sess-f", "agent-1")},
                               json={"model": CLAUDE, "max_tokens": 5, "messages": []})
    event = await gw.event("gateway.call")

    assert response.status_code == 529
    assert event.data["status"] == 529
    assert event.data["cost_usd"] == 0.0
    assert await usage_db.calls_of_session(db, "sess-f") == []


async def test_streams_from_servers_that_ignore_include_usage_are_forwarded_and_not_recorded(
        start_gateway: StartGateway, db: Database, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture) -> None:
    fake_openai.stream_usage = False
    gw = await start_gateway()
    gpt = await gw.openai(gw.grant("sess-nu", "agent-1"))

    chunks = await gpt.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "x"}],
                                               stream=True, stream_options={"include_usage": True})
    text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
    event = await gw.event("gateway.call")

    assert text == "FAKE: x"
    assert event.data["model"] is None
    assert await usage_db.calls_of_session(db, "sess-nu") == []
    assert "sends no usage in streamed replies" in caplog.text
