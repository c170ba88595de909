"""Voice notes over WhatsApp: transcribed through the model gateway before the agent reads them (a local whisper
server, so no key), the recording still in the inbox; a server that is down still lets the note through, with why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nanoclaw_app.settings import Settings, load_settings
from tests.channels.whatsapp.conftest import WhatsApp, running
from tests.fakes.neonize_client import FakeNeonizeClient, voice_note
from tests.fakes.transcription_server import FakeTranscriber, ogg_voice
from tests.waiting import until


@pytest.fixture
async def transcriber() -> AsyncIterator[FakeTranscriber]:
    server = FakeTranscriber("Running ten minutes late, start without me.", seconds=9.0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def voice_settings(settings: Settings, transcriber: FakeTranscriber) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2, runtime="local",
                         voice_transcription=True, transcription_base_url=transcriber.v1_url,
                         transcription_model="ggml-base.en", transcription_key="none")


@pytest.fixture
async def linked(voice_settings: Settings, fake: FakeNeonizeClient) -> AsyncIterator[WhatsApp]:
    async with running(voice_settings, fake) as harness:
        await harness.link()
        await harness.pair_owner()
        yield harness


async def test_a_voice_note_reaches_the_agent_as_words_with_the_recording_in_the_inbox(
    linked: WhatsApp, transcriber: FakeTranscriber
) -> None:
    audio = ogg_voice(9.2)
    assert await linked.fake.emit_message(voice_note(linked.fake, audio, seconds=9))
    await linked.reply_to("[voice note, 0:09] Running ten minutes late, start without me.")

    folder = await linked.session_folder()
    note = (await linked.inbound_contents(folder))[-1]
    assert note["text"] == "[voice note, 0:09] Running ten minutes late, start without me."
    [attachment] = note["attachments"]
    assert attachment["kind"] == "voice"
    assert (folder / attachment["local_path"]).read_bytes() == audio
    [upload] = transcriber.uploads
    assert (upload.data, upload.model, upload.authorization) == (audio, "ggml-base.en", "")  # no key for a local one
    assert upload.response_format == "json"  # not a whisper-named model: the plain form every server takes


async def test_a_transcription_server_that_is_down_still_lets_the_note_through_with_the_reason(
    linked: WhatsApp, transcriber: FakeTranscriber
) -> None:
    await transcriber.stop()
    assert await linked.fake.emit_message(voice_note(linked.fake, ogg_voice(64), seconds=64))
    expected = (f"[voice note, 1:04: not transcribed, because nothing answers at {transcriber.v1_url} (is the "
                "transcription server running?)]")
    await linked.reply_to(expected)

    folder = await linked.session_folder()
    note = (await linked.inbound_contents(folder))[-1]
    assert note["text"] == expected
    assert [a["kind"] for a in note["attachments"]] == ["voice"]
    assert (folder / note["attachments"][0]["local_path"]).is_file()


async def test_with_transcription_off_the_note_arrives_as_before(
    linked: WhatsApp, transcriber: FakeTranscriber
) -> None:
    linked.host.ctx.settings = linked.host.settings = linked.host.settings.replaced({"voice_transcription": False})
    assert await linked.fake.emit_message(voice_note(linked.fake, ogg_voice(3), seconds=3))
    folder = await linked.session_folder()
    await until(lambda: _has_voice(linked, folder))
    assert transcriber.uploads == []
    contents = await linked.inbound_contents(folder)
    assert not contents[-1]["text"]  # no line at all: the agent gets the recording only, as before


async def _has_voice(linked: WhatsApp, folder: Path) -> bool:
    contents = await linked.inbound_contents(folder)
    return any(a["kind"] == "voice" for c in contents for a in c["attachments"])
