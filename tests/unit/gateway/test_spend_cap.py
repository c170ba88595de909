"""The optional daily spend cap: refused calls get a clear message, the user is told once a day, midnight resets it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import anthropic
import openai
import pytest

from nanoclaw_app.db import usage as usage_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.gateway.spend import SpendTracker
from nanoclaw_app.timeutil import iso
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI
from tests.unit.gateway.conftest import CLAUDE, GPT, StartGateway

SAY: Any = [{"role": "user", "content": "hi"}]
BERLIN = ZoneInfo("Europe/Berlin")


async def test_reaching_the_cap_refuses_further_calls_clearly_and_tells_the_user_once(
        start_gateway: StartGateway, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI) -> None:
    fake_anthropic.usage["output_tokens"] = 100_000  # $1.50 with Sonnet's $15 per million output tokens
    gw = await start_gateway(daily_spend_cap_usd=1.0)
    token = gw.grant("sess-c", "agent-1")
    claude = await gw.anthropic(token)
    gpt = await gw.openai(token)

    await claude.messages.create(model=CLAUDE, max_tokens=5, messages=SAY)  # crosses the cap; already paid for
    reached = await gw.event("gateway.cap_reached")
    with pytest.raises(anthropic.BadRequestError) as claude_error:
        await claude.messages.create(model=CLAUDE, max_tokens=5, messages=SAY)
    with pytest.raises(openai.BadRequestError) as gpt_error:
        await gpt.chat.completions.create(model=GPT, messages=SAY)
    await gw.gateway.stop()  # waits for the notice task

    message = claude_error.value.response.json()["error"]["message"]
    assert "daily model spending limit ($1.00) is reached" in message
    assert "after midnight (Europe/Berlin time" in message
    assert "Settings → Daily spend cap" in message
    assert claude_error.value.response.headers["x-should-retry"] == "false"
    assert gpt_error.value.code == "daily_spend_cap_reached"
    assert gpt_error.value.response.json()["error"]["message"] == message
    assert gw.notices == [reached.data["message"]]
    assert "daily model spending limit ($1.00)" in gw.notices[0]
    assert len(fake_anthropic.requests) == 1
    assert fake_openai.requests == []
    assert [e.kind for e in gw.drain()].count("gateway.cap_reached") == 1


async def test_spending_earlier_today_counts_after_a_restart_but_yesterdays_does_not(
        start_gateway: StartGateway, db: Database, fake_anthropic: FakeAnthropic) -> None:
    now = datetime.now(UTC)
    local_midnight = datetime.now(BERLIN).replace(hour=0, minute=0, second=0, microsecond=0)
    before_midnight = local_midnight - timedelta(minutes=1)
    await usage_db.record_call(db, usage_db.CallUsage(None, None, "anthropic", CLAUDE, cost_usd=50.0,
                                                      created_at=iso(before_midnight)))
    gw = await start_gateway(daily_spend_cap_usd=2.0)
    claude = await gw.anthropic(gw.grant())
    await claude.messages.create(model=CLAUDE, max_tokens=5, messages=SAY)
    assert len(fake_anthropic.requests) == 1

    await usage_db.record_call(db, usage_db.CallUsage(None, None, "anthropic", CLAUDE, cost_usd=2.5,
                                                      created_at=iso(now)))
    await gw.gateway.stop()
    again = await start_gateway(daily_spend_cap_usd=2.0)
    with pytest.raises(anthropic.BadRequestError):
        await (await again.anthropic(again.grant())).messages.create(model=CLAUDE, max_tokens=5, messages=SAY)
    assert len(fake_anthropic.requests) == 1


async def test_a_failing_notice_is_logged_and_calls_are_still_refused(
        start_gateway: StartGateway, db: Database, caplog: pytest.LogCaptureFixture) -> None:
    async def broken(text: str) -> None:
        raise RuntimeError("channel down")

    await usage_db.record_call(db, usage_db.CallUsage(None, None, "anthropic", CLAUDE, cost_usd=9.0))
    gw = await start_gateway(daily_spend_cap_usd=1.0, on_cap_reached=broken)
    claude = await gw.anthropic(gw.grant())

    with pytest.raises(anthropic.BadRequestError):
        await claude.messages.create(model=CLAUDE, max_tokens=5, messages=SAY)
    await gw.gateway.stop()

    assert "telling the user that the daily spend cap is reached failed" in caplog.text


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


def test_the_cap_resets_at_the_users_midnight_and_notices_once_per_day() -> None:
    clock = Clock(datetime(2026, 3, 28, 23, 30, tzinfo=BERLIN))  # the night before the clocks go forward
    spend = SpendTracker(5.0, BERLIN, clock=clock)

    spend.add(4.0)
    assert not spend.reached()
    spend.add(1.0)
    assert spend.reached()
    assert spend.first_notice_today() is True
    assert spend.first_notice_today() is False
    assert spend.resets_at() == datetime(2026, 3, 29, 0, 0, tzinfo=BERLIN)
    assert "in 0 h 30 min" in spend.message()

    clock.moment = datetime(2026, 3, 29, 0, 1, tzinfo=BERLIN)
    assert not spend.reached()
    assert spend.spent_usd == 0.0
    spend.add(7.0)
    assert spend.reached()
    assert spend.first_notice_today() is True
    assert spend.resets_at() == datetime(2026, 3, 30, 0, 0, tzinfo=BERLIN)
    assert "in 22 h 59 min" in spend.message()  # a 23-hour day


def test_no_cap_never_refuses_and_a_raised_cap_applies_at_once() -> None:
    spend = SpendTracker(0.0, BERLIN)
    spend.add(1_000.0)
    assert not spend.reached()

    spend.cap_usd = 500.0
    assert spend.reached()
    spend.cap_usd = 2_000.0
    assert not spend.reached()
