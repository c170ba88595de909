"""Voice notes over Telegram: transcribed through the model gateway before the agent reads them, the recording still
in the inbox; when the transcription server fails, the note arrives anyway with the reason in words.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from nanoclaw_app.host import Host
from nanoclaw_app.settings import Settings, load_settings
from tests.channels.telegram.conftest import dm_session, inbound_texts, next_event, pair
from tests.fakes.telegram_api import ANN, FakeBotApi
from tests.fakes.transcription_server import FakeTranscriber, ogg_voice
from tests.waiting import until

KEY = "sk-test-voice-0123456789abcdef"


@pytest.fixture
async def transcriber() -> AsyncIterator[FakeTranscriber]:
    server = FakeTranscriber("Remind me to call the plumber tomorrow at nine.", seconds=12.0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def tg_settings(settings: Settings, api: FakeBotApi, transcriber: FakeTranscriber) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2, runtime="local",
                         telegram_api_base_url=api.base_url, voice_transcription=True,
                         transcription_base_url=transcriber.v1_url, transcription_model="whisper-1",
                         transcription_key="openai")


@pytest.fixture
async def paired(telegram: Host, api: FakeBotApi) -> Host:
    await telegram.secrets.set("openai_api_key", KEY)
    await pair(telegram, api)
    return telegram


def _answered(api: FakeBotApi) -> int:
    return sum(t.startswith("echo: [voice note") for t in api.texts(ANN.id))


async def send_voice(api: FakeBotApi, audio: bytes) -> dict[str, object]:
    """Ann sends a voice note; waits for the agent's answer to it."""
    before = _answered(api)
    message = api.push_message(voice=audio)
    await api.wait_for(lambda: _answered(api) > before, 30.0)
    return message


async def test_a_voice_note_reaches_the_agent_as_words_with_the_recording_in_the_inbox(
    paired: Host, api: FakeBotApi, transcriber: FakeTranscriber, agent_id: str
) -> None:
    audio = ogg_voice(12.4)
    message = await send_voice(api, audio)

    _, folder = await dm_session(paired, agent_id)
    assert await inbound_texts(paired, folder) == ["[voice note, 0:12] Remind me to call the plumber tomorrow at nine."]
    mid = message["message_id"]
    assert (folder / "inbox" / str(mid) / f"voice-{mid}.ogg").read_bytes() == audio
    [upload] = transcriber.uploads
    assert upload.data == audio
    assert upload.model == "whisper-1"
    assert upload.authorization == f"Bearer {KEY}"  # added by the gateway on the way out


async def test_the_transcription_is_counted_and_the_key_goes_nowhere_else(
    paired: Host, api: FakeBotApi, transcriber: FakeTranscriber, agent_id: str
) -> None:
    async with paired.events.subscribe() as events:
        await send_voice(api, ogg_voice(30))
        call = await next_event(events, ("gateway.call",), lambda d: d["provider"] == "transcribe")

    assert (call.data["agent_group_id"], call.data["model"], call.data["audio_seconds"]) == (agent_id, "whisper-1",
                                                                                             12.0)
    [row] = await until(lambda: _transcriptions(paired), 10.0)
    assert row == (agent_id, "whisper-1", 0.0)  # one usage row; a server on this computer costs nothing
    _, folder = await dm_session(paired, agent_id)
    stored = await paired.store.read(folder, lambda conn: conn.execute("SELECT content FROM messages_in").fetchall(),
                                     with_outbound=False)
    assert KEY not in json.dumps([r[0] for r in stored])
    assert KEY not in json.dumps(api.calls)  # Telegram never sees it
    assert all(KEY not in json.dumps(h) for h in transcriber.all_headers[1:])
    assert len(transcriber.all_headers) == 1


async def _transcriptions(host: Host) -> list[tuple[str, str, float]] | None:
    rows = await host.db.fetchall("SELECT agent_group_id, model, cost_usd FROM usage WHERE provider = 'transcribe'")
    return [(str(r[0]), str(r[1]), float(r[2])) for r in rows] or None


async def test_a_failed_transcription_still_delivers_the_note_with_the_reason(
    paired: Host, api: FakeBotApi, transcriber: FakeTranscriber, agent_id: str
) -> None:
    transcriber.fail(500)
    await send_voice(api, ogg_voice(5))
    await transcriber.stop()
    await send_voice(api, ogg_voice(7))

    _, folder = await dm_session(paired, agent_id)
    assert await inbound_texts(paired, folder) == [
        "[voice note, 0:05: not transcribed, because the transcription server had a problem of its own (HTTP 500)]",
        f"[voice note, 0:07: not transcribed, because nothing answers at {transcriber.v1_url} (is the transcription "
        "server running?)]",
    ]
    assert len(list((folder / "inbox").iterdir())) == 2  # both recordings arrived


async def test_a_note_longer_than_the_cap_is_not_sent_for_transcription(
    paired: Host, api: FakeBotApi, transcriber: FakeTranscriber, agent_id: str
) -> None:
    await send_voice(api, ogg_voice(15 * 60))

    _, folder = await dm_session(paired, agent_id)
    assert await inbound_texts(paired, folder) == [
        "[voice note, 15:00: not transcribed, because it is longer than the 10:00 that is transcribed]"]
    assert transcriber.uploads == []
