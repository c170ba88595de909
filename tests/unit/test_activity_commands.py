"""``nanoclaw activity``: deliveries, dropped messages, container logs and usage from a terminal."""

from __future__ import annotations

import asyncio
import json
from zoneinfo import ZoneInfo

import pytest

from nanoclaw_app.cli import main
from nanoclaw_app.db import delivery_attempts as attempts
from nanoclaw_app.db import drops, usage
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.usage import CallUsage
from nanoclaw_app.services.activity import mask_secrets, render_log
from nanoclaw_app.services.offline import offline_services
from nanoclaw_app.settings import load_settings
from nanoclaw_app.timeutil import iso, utcnow
from tests.integration.seed import seed


@pytest.fixture(autouse=True)
def berlin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NANOCLAW_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("NANOCLAW_DAILY_SPEND_CAP_USD", "2")


def seed_activity() -> str:
    """A failed delivery, a dropped message, two model calls today and a container log with a secret in it."""

    async def run() -> str:
        async with offline_services(load_settings()) as services:
            ctx = services.ctx
            ids = await seed(ctx.db)
            session, _ = await sessions_db.find_or_create(ctx.db, ids.agent_id, "shared", ids.dm_id, None)
            await ctx.store.create(ids.agent_id, session.id)
            await attempts.begin(ctx.db, session.id, "out-1")
            await attempts.failed(ctx.db, session.id, "out-1", "the bot was blocked by the user")
            await drops.record(ctx.db, channel_type="test", platform_id="group-1", reason="unknown_sender_strict",
                               user_id="test:eve", sender_name="Eve", text="let me in")
            now = iso(utcnow())
            await usage.record_calls(ctx.db, [
                CallUsage(ids.agent_id, session.id, "anthropic", "claude-haiku-4-5", 100, 10, cost_usd=0.5,
                          created_at=now),
                CallUsage(ids.agent_id, session.id, "anthropic", "claude-haiku-4-5", 100, 10, cost_usd=1.5,
                          created_at=now),
            ])
            services.settings.paths.container_log(session.id).write_text(
                "runner up\nOPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz0123\nbye\n", encoding="utf-8")
            return session.id

    return asyncio.run(run())


def test_deliveries_and_dropped_print_state_errors_and_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    seed_activity()
    assert main(["activity", "deliveries"]) == 0
    out = capsys.readouterr().out
    assert "failed: 1" in out
    assert "the bot was blocked by the user" in out
    assert main(["activity", "deliveries", "--state", "failed", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert [d["message_out_id"] for d in body["deliveries"]] == ["out-1"]
    assert main(["activity", "dropped"]) == 0
    out = capsys.readouterr().out
    assert "1 message reached no agent" in out
    assert "unknown_sender_strict" in out
    assert "Eve" in out


def test_logs_of_a_session_hide_keys(capsys: pytest.CaptureFixture[str]) -> None:
    session_id = seed_activity()
    assert main(["activity", "sessions"]) == 0
    assert session_id in capsys.readouterr().out
    assert main(["activity", "logs", session_id]) == 0
    out = capsys.readouterr().out
    assert "runner up" in out
    assert "OPENAI_API_KEY=sk-[hidden]" in out
    assert "abcdefghijklmnop" not in out
    assert main(["activity", "logs", "sess-nope"]) == 1
    assert "nanoclaw activity sessions" in capsys.readouterr().err


def test_usage_prints_today_against_the_cap(capsys: pytest.CaptureFixture[str]) -> None:
    seed_activity()
    assert main(["activity", "usage"]) == 0
    out = capsys.readouterr().out
    assert "Nano" in out
    assert "today: $2.0000 of the $2.00 daily cap; the cap is reached" in out
    assert main(["activity", "usage", "--days", "0"]) == 1
    assert "between 1 and 366 days" in capsys.readouterr().err


def test_log_lines_from_podman_get_local_times_and_joined_partials() -> None:
    text = ("2026-07-01T10:00:00.000000001Z stdout P hello \n"
            "2026-07-01T10:00:00.000000002Z stdout F world\n"
            "plain line from the local runtime\n")
    assert render_log(text, ZoneInfo("Europe/Berlin")).splitlines() == [
        "2026-07-01 12:00:00  hello world", "plain line from the local runtime"]


@pytest.mark.parametrize(("line", "hidden"), [
    ("export NANOCLAW_MODEL_TOKEN=ncgw-abcdefghijklmnop", "abcdefghijklmnop"),
    ('{"x-api-key": "sk-ant-api03-secretsecret"}', "secretsecret"),
    ("curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload'", "eyJhbGciOiJIUzI1NiJ9"),
    ("bot 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0 polling", "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"),
    ("DB_PASSWORD: hunter2hunter2", "hunter2hunter2"),
])
def test_credentials_are_masked_in_logs(line: str, hidden: str) -> None:
    masked = mask_secrets(line)
    assert hidden not in masked
    assert "[hidden" in masked


def test_token_counts_and_ordinary_words_stay_readable() -> None:
    line = "usage: input_tokens=1234 output_tokens=56; tokenizer ready"
    assert mask_secrets(line) == line
