"""One audio file to words, through the host's own model gateway to an OpenAI-compatible ``/audio/transcriptions``.

The call carries a gateway token made for it alone (valid only for the transcription route, revoked right after), so
the real key is added by the gateway and never leaves it, the spend cap applies and the call gets its ``usage`` row.
Every failure becomes a :class:`TranscriptionFailed` whose reason a person can read in the chat.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from nanoclaw_app.gateway.server import UNIX_ORIGIN, ModelGateway
from nanoclaw_app.settings import Settings

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 120.0
"""Longest wait for one transcript; ten minutes of audio take a few seconds at OpenAI or Groq and under a minute on a
small local whisper.cpp."""
MAX_TRANSCRIPT_CHARS = 20_000
"""More than ten minutes of speech; a longer answer is cut (the server is the user's, but the prompt is not endless)."""


class TranscriptionFailed(Exception):
    """The reason, in words for the chat (``str(err)``)."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """What the server heard, and the audio's length when it said."""

    text: str
    seconds: float | None


def _client(gateway: ModelGateway) -> httpx.AsyncClient:
    timeout = httpx.Timeout(TIMEOUT_SECONDS, connect=5.0)
    if gateway.transport == "unix":
        if gateway.socket_path is None:
            raise TranscriptionFailed("NanoClaw's model gateway is not running")
        return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(gateway.socket_path)),
                                 base_url=UNIX_ORIGIN, timeout=timeout)
    if gateway.port is None:
        raise TranscriptionFailed("NanoClaw's model gateway is not running")
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=timeout)


async def transcribe(gateway: ModelGateway, settings: Settings, agent_group_id: str, name: str, data: bytes,
                     mime_type: str) -> Transcript:
    """The words of one audio file; raises :class:`TranscriptionFailed` saying why there are none."""
    model = settings.transcription_model.strip() or "whisper-1"
    # verbose_json says how long the audio was (the usage row's seconds); the gpt-4o transcribe models refuse it.
    form = {"model": model, "response_format": "verbose_json" if "whisper" in model.lower() else "json"}
    grant = f"voice-{secrets.token_hex(6)}"
    token = gateway.grant(grant, agent_group_id, upstream="transcribe")
    try:
        async with _client(gateway) as client:
            response = await client.post("/transcribe/audio/transcriptions", data=form,
                                         files={"file": (name, data, mime_type or "application/octet-stream")},
                                         headers={"authorization": f"Bearer {token}"})
    except httpx.TimeoutException as err:
        raise TranscriptionFailed(f"the transcription server did not answer within {TIMEOUT_SECONDS:.0f} seconds"
                                  ) from err
    except httpx.HTTPError as err:
        log.error("voice notes: NanoClaw's model gateway did not take a transcription call: %s", err)
        raise TranscriptionFailed("NanoClaw's model gateway did not answer") from err
    finally:
        gateway.revoke(grant)
    if response.status_code != 200:
        raise TranscriptionFailed(_reason(response, settings))
    return _transcript(response)


def _transcript(response: httpx.Response) -> Transcript:
    try:
        body: Any = response.json()
    except (ValueError, json.JSONDecodeError):
        body = {"text": response.text}  # response_format=text servers
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise TranscriptionFailed("the transcription server answered, but not with a transcript")
    seconds = body.get("duration")
    usage = body.get("usage")
    if not isinstance(seconds, int | float) and isinstance(usage, dict):
        seconds = usage.get("seconds")
    known = float(seconds) if isinstance(seconds, int | float) and not isinstance(seconds, bool) else None
    return Transcript(" ".join(body["text"].split())[:MAX_TRANSCRIPT_CHARS], known)


def _reason(response: httpx.Response, settings: Settings) -> str:
    """A refused or failed call in plain words; the gateway's own refusals carry a code that says which."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    code = str(error.get("code") or "") if isinstance(error, dict) else ""
    message = str(error.get("message") or "") if isinstance(error, dict) else ""
    status = response.status_code
    log.warning("voice notes: transcription call got HTTP %d (%s): %s", status, code or "-", message[:300])
    if code == "missing_api_key":
        return "no OpenAI API key is set up (Settings → Model access), or choose a server that needs none"
    if code == "upstream_unreachable":
        return f"nothing answers at {settings.transcription_base_url} (is the transcription server running?)"
    if code == "daily_spend_cap_reached":
        return "today's model spending limit is reached"
    if code in ("gateway_stopping", "secret_store_unavailable"):
        return message.rstrip(".") or "NanoClaw could not send it"
    if status == 401:
        return "the transcription server refused the key"
    if status == 404 or (status == 400 and "model" in message.lower()):
        return f"the transcription server does not know the model “{settings.transcription_model}”"
    if status == 413:
        return "the transcription server found the file too large"
    if status == 429:
        return "the transcription server is limiting requests right now"
    if status >= 500:
        return f"the transcription server had a problem of its own (HTTP {status})"
    return f"the transcription server refused it (HTTP {status})"
