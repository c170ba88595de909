"""The gateway's transcription route: only the host's own transcription token may use it, only for
``/audio/transcriptions``; the key is added on the way out and each call leaves a usage row with its seconds counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from nanoclaw_app.db.database import Database
from nanoclaw_app.gateway.pricing import audio_cost
from nanoclaw_app.secrets.store import SecretStore
from tests.fakes.transcription_server import FakeTranscriber, ogg_voice
from tests.unit.gateway.conftest import REAL_OPENAI_KEY, StartGateway
from tests.waiting import until

PATH = "/transcribe/audio/transcriptions"


@pytest.fixture
async def transcriber() -> AsyncIterator[FakeTranscriber]:
    async with FakeTranscriber("hello there", seconds=42.0) as server:
        yield server


def upload(model: str = "whisper-1") -> dict[str, object]:
    return {"data": {"model": model, "response_format": "verbose_json"},
            "files": {"file": ("voice.ogg", ogg_voice(42), "audio/ogg")}}


async def test_the_host_transcription_token_gets_the_key_added_and_the_call_counted(
        start_gateway: StartGateway, transcriber: FakeTranscriber, secret_store: SecretStore, db: Database) -> None:
    await secret_store.set("openai_api_key", REAL_OPENAI_KEY)
    gw = await start_gateway(transcription_base_url=transcriber.v1_url, transcription_key="openai")
    token = gw.gateway.grant("voice-1", "agent-1", upstream="transcribe")
    client = await gw.http()

    response = await client.post(PATH, headers={"authorization": f"Bearer {token}"}, **upload())  # type: ignore[arg-type]

    assert response.status_code == 200
    assert response.json()["text"] == "hello there"
    [sent] = transcriber.uploads
    assert sent.authorization == f"Bearer {REAL_OPENAI_KEY}"
    assert token not in str(transcriber.all_headers)
    call = await gw.event("gateway.call")
    assert (call.data["provider"], call.data["model"], call.data["audio_seconds"]) == ("transcribe", "whisper-1", 42.0)
    rows = await until(lambda: _rows(db), 10.0)
    assert rows == [("agent-1", "voice-1", "transcribe", "whisper-1")]


async def _rows(db: Database) -> list[tuple[str, str, str, str]] | None:
    found = await db.fetchall("SELECT agent_group_id, session_id, provider, model FROM usage")
    return [(str(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in found] or None


async def test_a_local_server_gets_no_key_at_all(
        start_gateway: StartGateway, transcriber: FakeTranscriber, secret_store: SecretStore) -> None:
    await secret_store.set("openai_api_key", REAL_OPENAI_KEY)
    gw = await start_gateway(transcription_base_url=transcriber.v1_url, transcription_key="none")
    token = gw.gateway.grant("voice-1", "agent-1", upstream="transcribe")
    client = await gw.http()

    response = await client.post(PATH, headers={"authorization": f"Bearer {token}"}, **upload())  # type: ignore[arg-type]

    assert response.status_code == 200
    assert transcriber.uploads[0].authorization == ""
    assert REAL_OPENAI_KEY not in str(transcriber.all_headers)


async def test_container_and_setup_tokens_cannot_transcribe_and_the_transcription_token_reaches_nothing_else(
        start_gateway: StartGateway, transcriber: FakeTranscriber, secret_store: SecretStore) -> None:
    await secret_store.set("openai_api_key", REAL_OPENAI_KEY)
    gw = await start_gateway(transcription_base_url=transcriber.v1_url, transcription_key="openai")
    container = gw.gateway.grant("sess-1", "agent-1", upstream="openai")
    setup_check = gw.grant()
    voice = gw.gateway.grant("voice-1", "agent-1", upstream="transcribe")
    client = await gw.http()

    refused = [await client.post(PATH, headers={"authorization": f"Bearer {t}"}, **upload())  # type: ignore[arg-type]
               for t in (container, setup_check)]
    through_openai = await client.post("/openai/audio/transcriptions", headers={"authorization": f"Bearer {container}"},
                                       **upload())  # type: ignore[arg-type]
    other_path = await client.post("/transcribe/chat/completions", headers={"authorization": f"Bearer {voice}"},
                                   json={"model": "gpt-4o", "messages": []})
    other_api = await client.post("/openai/chat/completions", headers={"authorization": f"Bearer {voice}"},
                                  json={"model": "gpt-4o", "messages": []})

    assert [r.status_code for r in refused] == [403, 403]
    assert "only NanoClaw itself transcribes" in refused[0].json()["error"]["message"]
    assert through_openai.status_code == 404  # the model API route never forwards uploads
    assert other_path.status_code == 404
    assert other_api.status_code == 403
    await asyncio.sleep(0)
    assert transcriber.uploads == []
    assert transcriber.all_headers == []


def test_transcription_is_priced_per_minute_and_free_on_the_users_own_machines() -> None:
    assert audio_cost("whisper-1", 90, local=False) == pytest.approx(0.009)
    assert audio_cost("whisper-large-v3-turbo", 3600, local=False) == pytest.approx(0.04)
    assert audio_cost("some-new-model", 60, local=False) == pytest.approx(0.006)  # counted, never free
    assert audio_cost("whisper-1", 600, local=True) == 0.0
