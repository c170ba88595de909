"""Voice notes in the app: a recording sent in the chat shows what the agent was told it says right under it, and the
Settings page turns transcription on and picks the server, the model and the key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from nanoclaw_app.db import agents
from nanoclaw_app.host import Host
from nanoclaw_app.services import chat
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.transcription_server import FakeTranscriber, ogg_voice
from tests.web.conftest import shot

PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 800}
SAID = "Can you add oat milk and two lemons to the shopping list, and remind me about it when I leave work?"


@pytest.fixture
async def transcriber() -> AsyncIterator[FakeTranscriber]:
    async with FakeTranscriber(SAID, seconds=12.0) as server:
        yield server


@pytest.fixture
def web_settings(settings: Settings, transcriber: FakeTranscriber) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2, runtime="local",
                         voice_transcription=True, transcription_base_url=transcriber.v1_url,
                         transcription_key="none")


@pytest.fixture
async def agent_id(web_host: Host) -> str:
    agent = await agents.create(web_host.db, "Nano")
    await chat.ensure_owner_chat(web_host.services, agent.id)
    return agent.id


async def test_a_recording_sent_in_the_chat_shows_its_transcript_under_it(
    web_host: Host, page: Any, base_url: str, agent_id: str, transcriber: FakeTranscriber
) -> None:
    await page.goto(f"{base_url}/chat")
    await page.wait_for_selector("body[data-chat-ready=true]")
    await page.set_input_files("#chat-file-input", files=[
        {"name": "shopping.ogg", "mimeType": "audio/ogg", "buffer": ogg_voice(12.3)},
    ])
    await page.locator("#chat-send").click()

    line = f"[audio “shopping.ogg”, 0:12] {SAID}"
    mine = page.locator("li.msg.mine")
    await expect(mine.locator(".file-chip .file-name")).to_have_text("shopping.ogg")
    await expect(mine.locator(".file-transcript")).to_have_text(line)
    await expect(page.locator("li.msg.theirs .msg-text")).to_have_text(f"echo: {line}")
    assert [u.file_name for u in transcriber.uploads] == ["shopping.ogg"]

    await page.reload()  # the transcript is kept with the message, not only shown live
    await page.wait_for_selector("body[data-chat-ready=true]")
    await expect(page.locator("li.msg.mine .file-transcript")).to_have_text(line)
    await page.locator("#chat-text").fill("Thanks!")
    await shot(page, "chat-voice-transcript")
    await page.set_viewport_size(PHONE)
    await expect(page.locator("li.msg.mine .file-transcript")).to_be_visible()
    await shot(page, "chat-voice-transcript-phone")


async def test_a_failed_transcription_shows_why_under_the_recording(
    web_host: Host, page: Any, base_url: str, agent_id: str, transcriber: FakeTranscriber
) -> None:
    transcriber.fail(500)
    await page.goto(f"{base_url}/chat")
    await page.wait_for_selector("body[data-chat-ready=true]")
    await page.set_input_files("#chat-file-input", files=[
        {"name": "memo.ogg", "mimeType": "audio/ogg", "buffer": ogg_voice(4)},
    ])
    await page.locator("#chat-send").click()
    await expect(page.locator("li.msg.mine .file-transcript")).to_have_text(
        "[audio “memo.ogg”, 0:04: not transcribed, because the transcription server had a problem of its own "
        "(HTTP 500)]")


async def test_the_settings_page_shows_and_saves_the_voice_note_settings(
    web_host: Host, page: Any, base_url: str, transcriber: FakeTranscriber, client: httpx.AsyncClient
) -> None:
    await page.goto(f"{base_url}/settings")
    form = page.locator("#voice-form")
    await expect(form.locator('input[name="voice_transcription"]')).to_be_checked()
    await expect(form.locator('input[name="transcription_base_url"]')).to_have_value(transcriber.v1_url)
    await expect(form.locator('input[name="transcription_model"]')).to_have_value("whisper-1")
    await expect(form.locator('select[name="transcription_key"]')).to_have_value("none")
    await form.scroll_into_view_if_needed()
    await shot(page, "settings-voice-notes")
    await page.set_viewport_size(PHONE)
    await form.scroll_into_view_if_needed()
    await shot(page, "settings-voice-notes-phone")
    await page.set_viewport_size(WIDE)

    await form.locator('input[name="transcription_base_url"]').fill("https://api.groq.com/openai/v1/")
    await form.locator('input[name="transcription_model"]').fill("whisper-large-v3-turbo")
    await form.locator('select[name="transcription_key"]').select_option("openai")
    await form.get_by_role("button", name="Save").click()
    await expect(page.locator(".toast").last).to_contain_text("Saved")

    settings = web_host.settings
    assert (settings.transcription_base_url, settings.transcription_model, settings.transcription_key) == (
        "https://api.groq.com/openai/v1", "whisper-large-v3-turbo", "openai")
    refused = await client.put("/api/settings", json={"transcription_base_url": "ftp://example.com"})
    assert refused.status_code == 400
    assert "must start with http:// or https://" in refused.text
