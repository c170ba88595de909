"""The activity page and API: deliveries with their state, dropped messages with reasons, container logs (tail, masked)
and model usage and cost per agent and day on the user's clock."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from nanoclaw_app.db import agents, drops, usage
from nanoclaw_app.db import delivery_attempts as attempts
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.usage import CallUsage
from nanoclaw_app.host import Host
from nanoclaw_app.settings import Settings
from nanoclaw_app.timeutil import iso, later_iso, utcnow
from tests.integration.seed import seed
from tests.web.conftest import shot

TOKEN = "ncgw-Zq3xV9mK2pL7wR4tY8uB1nC6eD0fG5hJ"
LOG_START = datetime(2026, 3, 14, 8, 0, tzinfo=UTC)


@pytest.fixture
def web_settings(web_settings: Settings) -> Settings:
    """A daily cap, so the usage tab has something to compare today's spend with."""
    return dataclasses.replace(web_settings, daily_spend_cap_usd=5.0)


@dataclass(frozen=True)
class Seeded:
    agent_id: str
    helper_id: str
    session_id: str
    folder: Path
    log: Path
    """The session's container log: host-only, outside the session folder."""
    tz_day: str
    """The local day a call made at 23:30 UTC two days ago belongs to (the next day in Berlin)."""


def k8s(moment: datetime, stream: str, text: str, flag: str = "F") -> str:
    """A line as Podman's k8s-file log driver writes it (nanosecond timestamps)."""
    return f"{moment.strftime('%Y-%m-%dT%H:%M:%S')}.123456789Z {stream} {flag} {text}\n"


def write_outbound(folder: Path, rows: list[tuple[str, str]]) -> None:
    """Messages the agent wrote (the container's side of the session)."""
    conn = sqlite3.connect(folder / "outbound.db")
    try:
        for seq, (message_id, text) in enumerate(rows):
            conn.execute(
                "INSERT INTO messages_out (id, seq, timestamp, kind, platform_id, channel_type, content)"
                " VALUES (?, ?, ?, 'chat', 'owner', 'test', json_object('text', ?))",
                (message_id, 2 * seq + 1, iso(utcnow()), text),
            )
        conn.commit()
    finally:
        conn.close()


async def seed_activity(host: Host) -> Seeded:
    ids = await seed(host.db)
    db = host.db
    helper = await agents.create(db, "Helper")
    session, _ = await sessions_db.find_or_create(db, ids.agent_id, "shared", ids.dm_id, None)
    folder = await host.store.create(ids.agent_id, session.id)

    # Deliveries: recorded before the outbound rows exist, so the host's delivery loop never sends them for real.
    await attempts.begin(db, session.id, "out-weather")
    await attempts.succeeded(db, session.id, "out-weather")
    await attempts.begin(db, session.id, "out-report")
    await attempts.retry_later(db, session.id, "out-report", "Telegram said: Too Many Requests", later_iso(3600))
    for _ in range(3):
        await attempts.begin(db, session.id, "out-photo")
    await attempts.failed(db, session.id, "out-photo", "the chat was deleted (after 3 attempts)")
    await host.store.record_delivery(folder, "out-weather", "m-1", "delivered")
    await host.store.record_delivery(folder, "out-photo", None, "failed", "the chat was deleted")
    write_outbound(folder, [("out-weather", "Good morning! Sunny, 21 °C."), ("out-report", "Your weekly report"),
                            ("out-photo", "Here is the photo of the plants")])

    for text in ("hello bot?", "who are you?"):
        await drops.record(db, channel_type="test", platform_id="group-1", reason="unknown_sender_strict",
                           user_id="test:stranger", sender_name="Stranger", messaging_group_id=ids.group_id,
                           agent_group_id=ids.agent_id, text=text)
    await drops.record(db, channel_type="test", platform_id="chat-9", reason="no_agent_wired", user_id="test:bob",
                       sender_name="Bob", text="anyone here?")

    tz = host.settings.tz
    today = utcnow().astimezone(tz).date()
    two_days_ago = today - timedelta(days=2)
    late = datetime.combine(two_days_ago, time(23, 30), tzinfo=UTC)  # 00:30 or 01:30 the next day in Berlin
    noon = datetime.combine(today - timedelta(days=1), time(12, 0), tzinfo=tz)
    await usage.record_calls(db, [
        CallUsage(ids.agent_id, session.id, "anthropic", "claude-sonnet-4-5", 12_000, 800, 30_000, 2_000, 1.25,
                  iso(utcnow())),
        CallUsage(ids.agent_id, session.id, "anthropic", "claude-sonnet-4-5", 3_000, 200, 0, 0, 0.75,
                  iso(utcnow())),
        CallUsage(helper.id, None, "openai", "gpt-5-mini", 5_000, 1_000, 0, 0, 0.40, iso(noon)),
        CallUsage(ids.agent_id, session.id, "anthropic", "claude-haiku-4-5", 1_000, 100, 0, 0, 0.30, iso(late)),
        CallUsage(ids.agent_id, session.id, "anthropic", "claude-haiku-4-5", 1_000, 100, 0, 0, 9.99,
                  iso(utcnow() - timedelta(days=40))),  # outside the 30 days
    ])

    lines = [k8s(LOG_START, "stdout", "agent runner started (protocol 3)"),
             k8s(LOG_START, "stderr", f"claude: ANTHROPIC_API_KEY={TOKEN}"),
             k8s(LOG_START, "stderr", f"request headers: Authorization: Bearer {TOKEN}"),
             k8s(LOG_START, "stdout", "a long line that Podman ", "P"),
             k8s(LOG_START, "stdout", "split in two"),
             *(k8s(LOG_START + timedelta(seconds=i), "stdout", f"working on step {i}") for i in range(400)),
             k8s(LOG_START + timedelta(minutes=30), "stdout", "replied to the owner; waiting for more")]
    log = host.settings.paths.container_log(session.id)
    log.write_text("".join(lines), encoding="utf-8")
    return Seeded(ids.agent_id, helper.id, session.id, folder, log, (two_days_ago + timedelta(days=1)).isoformat())


async def test_deliveries_show_state_attempts_error_and_what_was_sent(
    web_host: Host, client: httpx.AsyncClient
) -> None:
    await seed_activity(web_host)
    body = (await client.get("/api/activity/deliveries")).json()
    assert body["counts"] == {"sending": 0, "retry": 1, "delivered": 1, "failed": 1}
    by_id = {d["message_out_id"]: d for d in body["deliveries"]}
    assert by_id["out-weather"]["state"] == "delivered"
    assert by_id["out-weather"]["preview"] == "Good morning! Sunny, 21 °C."
    assert by_id["out-weather"]["agent_name"] == "Nano"
    assert by_id["out-weather"]["destination"] == "Owner DM"
    assert by_id["out-photo"]["attempts"] == 3
    assert by_id["out-photo"]["last_error"] == "the chat was deleted (after 3 attempts)"
    assert by_id["out-report"]["last_error"] == "Telegram said: Too Many Requests"
    assert by_id["out-report"]["next_attempt_at"] is not None
    failed = (await client.get("/api/activity/deliveries", params={"state": "failed"})).json()
    assert [d["message_out_id"] for d in failed["deliveries"]] == ["out-photo"]
    bad = await client.get("/api/activity/deliveries", params={"state": "lost"})
    assert bad.status_code == 400
    assert "delivered" in bad.json()["error"]


async def test_dropped_messages_come_with_reasons_and_counts(web_host: Host, client: httpx.AsyncClient) -> None:
    await seed_activity(web_host)
    body = (await client.get("/api/activity/dropped")).json()
    assert body["total_messages"] == 3
    assert [(r["reason"], r["messages"]) for r in body["reasons"]] == [("unknown_sender_strict", 2),
                                                                      ("no_agent_wired", 1)]
    stranger = next(d for d in body["dropped"] if d["reason"] == "unknown_sender_strict")
    assert stranger["sender"] == "Stranger"
    assert stranger["chat"] == "Family"
    assert stranger["agent_name"] == "Nano"
    assert stranger["count"] == 2
    assert stranger["last_text"] == "who are you?"


async def test_a_container_log_tail_is_local_time_whole_lines_and_hides_the_gateway_token(
    web_host: Host, client: httpx.AsyncClient
) -> None:
    seeded = await seed_activity(web_host)
    sessions = (await client.get("/api/activity/sessions")).json()
    assert [(s["session_id"], s["agent_name"], s["chat"]) for s in sessions] == [
        (seeded.session_id, "Nano", "Owner DM")]
    assert sessions[0]["log_bytes"] == seeded.log.stat().st_size

    tail = (await client.get(f"/api/activity/logs/{seeded.session_id}")).json()
    assert tail["truncated"] is False
    assert TOKEN not in tail["text"]
    assert "ANTHROPIC_API_KEY=ncgw-[hidden]" in tail["text"]
    assert "Authorization: Bearer ncgw-[hidden]" in tail["text"]
    assert "2026-03-14 09:00:00  agent runner started" in tail["text"]  # 08:00 UTC is 09:00 in Berlin
    assert "a long line that Podman split in two" in tail["text"]

    short = (await client.get(f"/api/activity/logs/{seeded.session_id}", params={"kb": 1})).json()
    assert short["truncated"] is True
    assert short["shown_bytes"] <= 1024
    assert short["size_bytes"] == sessions[0]["log_bytes"]
    assert short["text"].splitlines()[0].startswith("2026-03-14 09:")  # starts on a whole line
    assert short["text"].endswith("09:30:00  replied to the owner; waiting for more")

    missing = await client.get("/api/activity/logs/sess-nope")
    assert missing.status_code == 404
    assert "nanoclaw activity sessions" in missing.json()["error"]
    too_much = await client.get(f"/api/activity/logs/{seeded.session_id}", params={"kb": 0})
    assert too_much.status_code == 400


async def test_usage_is_summed_per_agent_and_local_day_with_today_against_the_cap(
    web_host: Host, client: httpx.AsyncClient
) -> None:
    seeded = await seed_activity(web_host)
    report = (await client.get("/api/activity/usage")).json()
    assert report["timezone"] == "Europe/Berlin"
    assert len(report["daily"]) == 30
    assert report["daily"][-1]["day"] == report["last_day"]
    cells = {(r["day"], r["agent_name"]): r for r in report["rows"]}
    today = report["last_day"]
    assert cells[(today, "Nano")]["calls"] == 2
    assert cells[(today, "Nano")]["cost_usd"] == pytest.approx(2.0)
    assert cells[(today, "Nano")]["cache_read_tokens"] == 30_000
    assert cells[(seeded.tz_day, "Nano")]["cost_usd"] == pytest.approx(0.30)  # the Berlin day, not the UTC one
    utc_day = (date.fromisoformat(seeded.tz_day) - timedelta(days=1)).isoformat()
    assert (utc_day, "Nano") not in cells
    assert report["total"]["cost_usd"] == pytest.approx(2.70)  # the call 40 days ago is left out
    assert [(a["agent_name"], round(a["cost_usd"], 2)) for a in report["agents"]] == [("Nano", 2.3), ("Helper", 0.4)]
    assert report["today"] == {
        "day": today, "spent_usd": pytest.approx(2.0), "cap_usd": 5.0, "cap_on": True, "used_percent": 40.0,
        "reached": False, "resets_at": report["today"]["resets_at"],
    }
    assert report["today"]["resets_at"].endswith(" 00:00")


async def test_each_tab_of_the_activity_page_shows_its_records(web_host: Host, page: Any, base_url: str) -> None:
    seeded = await seed_activity(web_host)
    await page.goto(f"{base_url}/activity")
    deliveries = page.locator("#panel-deliveries")
    await expect(deliveries.locator("tr[data-message-id='out-photo']")).to_contain_text("the chat was deleted")
    await expect(deliveries.locator("tr[data-message-id='out-weather']")).to_contain_text("Delivered")
    await expect(deliveries.locator("tr[data-message-id='out-report']")).to_contain_text("Will retry")
    await shot(page, "activity-deliveries")

    await page.get_by_role("tab", name="Dropped").click()
    dropped = page.locator("#panel-dropped")
    await expect(dropped).to_contain_text("3 messages reached no agent")
    await expect(dropped.locator("tr[data-reason='unknown_sender_strict']")).to_contain_text("Stranger")
    await expect(dropped.locator("tr[data-reason='no_agent_wired']")).to_contain_text("add one on the Chats page")
    await shot(page, "activity-dropped")

    await page.get_by_role("tab", name="What agents did").click()
    timeline = page.locator("#timeline")
    await expect(timeline.locator("[data-kind='replied']")).to_contain_text("Reply sent: “Good morning! Sunny, 21 °C.”")
    await expect(timeline.locator("[data-kind='reply_failed']")).to_contain_text("could not be delivered")
    await expect(timeline.locator("[data-kind='model_called']")).to_have_count(4)
    log_box = page.locator("#log-text")
    await expect(log_box).to_be_hidden()  # the raw log waits behind its toggle
    await page.get_by_text("Show the raw container log").click()
    await expect(log_box).to_contain_text("replied to the owner; waiting for more")
    await expect(log_box).to_contain_text("ANTHROPIC_API_KEY=ncgw-[hidden]")
    assert TOKEN not in await log_box.inner_text()
    await expect(page.locator("#log-session")).to_have_value(seeded.session_id)
    with seeded.log.open("a", encoding="utf-8") as log:
        log.write(k8s(LOG_START + timedelta(hours=1), "stdout", "a new line after refresh"))
    await page.get_by_role("button", name="Refresh").click()
    await expect(log_box).to_contain_text("a new line after refresh")
    await shot(page, "activity-logs")

    await page.get_by_role("tab", name="Usage").click()
    usage_panel = page.locator("#panel-usage")
    await expect(usage_panel.locator("#usage-today")).to_contain_text("$2.00 of $5.00 daily cap (40%)")
    await expect(usage_panel.locator(".bar-col")).to_have_count(30)
    await expect(usage_panel.locator(".seg")).to_have_count(3)
    await expect(usage_panel.locator("table.usage-agents tfoot")).to_contain_text("$2.70")
    nano_that_day = usage_panel.locator(f"table.usage-days tr[data-day='{seeded.tz_day}']").filter(has_text="Nano")
    await expect(nano_that_day).to_contain_text("$0.30")
    await shot(page, "activity-usage")
    assert page.url.endswith("#usage")


async def test_with_nothing_recorded_yet_each_tab_says_so(web_host: Host, page: Any, base_url: str) -> None:
    await page.goto(f"{base_url}/activity#usage")
    await expect(page.locator("#usage-table")).to_contain_text("No model calls in the last 30 days.")
    await expect(page.locator("#usage-today")).to_contain_text("$0.00 of $5.00 daily cap (0%)")
    await expect(page.locator("#panel-usage .seg")).to_have_count(0)
    await page.get_by_role("tab", name="Deliveries").click()
    await expect(page.locator("#delivery-list")).to_contain_text("Nothing sent yet.")
    await page.get_by_role("tab", name="Dropped").click()
    await expect(page.locator("#dropped-list")).to_contain_text("everything that arrived reached an agent")
    await page.get_by_role("tab", name="What agents did").click()
    await expect(page.locator("#timeline-meta")).to_contain_text("No sessions yet")


def write_inbound(folder: Path, at: datetime, sender: str, text: str) -> None:
    """A message that reached the agent and was answered (completed: the test runtime leaves it alone)."""
    conn = sqlite3.connect(folder / "inbound.db")
    try:
        conn.execute("INSERT INTO messages_in (id, seq, kind, timestamp, status, content) VALUES ('in-1', 2, 'chat',"
                     " ?, 'completed', json_object('text', ?, 'sender_name', ?))", (iso(at), text, sender))
        conn.commit()
    finally:
        conn.close()


async def test_what_the_agent_did_is_a_timeline_in_words_with_the_raw_log_behind_a_toggle(
    web_host: Host, client: httpx.AsyncClient, page: Any, base_url: str
) -> None:
    ids = await seed(web_host.db)
    session, _ = await sessions_db.find_or_create(web_host.db, ids.agent_id, "shared", ids.dm_id, None)
    folder = await web_host.store.create(ids.agent_id, session.id)
    start = utcnow().replace(microsecond=0) - timedelta(minutes=5)
    runner = "%Y-%m-%d %H:%M:%S,250"
    web_host.settings.paths.container_log(session.id).write_text("".join([
        k8s(start, "stderr", f"{start.strftime(runner)} INFO agent_runner: runner process up; loading provider claude"),
        k8s(start + timedelta(seconds=40), "stderr",
            f"{start.strftime(runner)} ERROR agent_runner.loop: the provider failed: Traceback (most recent call)"),
    ]), encoding="utf-8")
    write_inbound(folder, start + timedelta(seconds=10), "Ada", "What is the weather tomorrow?")
    await usage.record_call(web_host.db, CallUsage(ids.agent_id, session.id, "anthropic", "claude-sonnet-4-5",
                                                   1_000, 200, 0, 0, 0.01, iso(start + timedelta(seconds=20))))
    for message_id in ("out-task", "out-reply"):  # handled before they exist: the host's loop leaves them alone
        await attempts.begin(web_host.db, session.id, message_id)
        await attempts.succeeded(web_host.db, session.id, message_id)
    conn = sqlite3.connect(folder / "outbound.db")
    try:
        conn.execute("INSERT INTO messages_out (id, seq, timestamp, kind, content) VALUES ('out-task', 1, ?, 'system',"
                     " json_object('type', 'action', 'action', 'schedule_task', 'payload', json_object()))",
                     (iso(start + timedelta(seconds=25)),))
        conn.execute("INSERT INTO messages_out (id, seq, timestamp, kind, platform_id, channel_type, content)"
                     " VALUES ('out-reply', 3, ?, 'chat', 'owner', 'test', json_object('text', 'Sunny, 21 °C.'))",
                     (iso(start + timedelta(seconds=30)),))
        conn.commit()
    finally:
        conn.close()

    tail = (await client.get(f"/api/activity/logs/{session.id}")).json()
    assert [(e["kind"], e["who"], e["text"]) for e in tail["timeline"]] == [
        ("container_started", "", ""),
        ("received", "Ada", "What is the weather tomorrow?"),
        ("model_called", "claude-sonnet-4-5", "1,200"),
        ("tool_used", "", "schedule task"),
        ("replied", "", "Sunny, 21 °C."),
        ("problem", "", ""),  # the traceback stays in the raw log
    ]

    await page.goto(f"{base_url}/activity#containers")
    timeline = page.locator("#timeline")
    await expect(timeline.locator("li.tl")).to_have_text([
        re.compile("The agent's container started$"),
        re.compile("Message received from Ada: “What is the weather tomorrow\\?”$"),
        re.compile(r"Asked the model \(claude-sonnet-4-5, 1,200 tokens\)$"),
        re.compile("Used a tool: schedule task$"),
        re.compile("Reply sent: “Sunny, 21 °C.”$"),
        re.compile("The agent ran into a problem"),
    ])
    await expect(timeline).not_to_contain_text("Traceback")
    await expect(page.locator("#log-text")).to_be_hidden()
    await shot(page, "activity-timeline")
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "activity-timeline-phone")
    await page.set_viewport_size({"width": 1280, "height": 800})
    await page.get_by_text("Show the raw container log").click()
    await expect(page.locator("#log-text")).to_contain_text("Traceback")
