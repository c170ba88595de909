"""Voice notes in words: the hook the router calls (``CoreContext.transcriber``) before a message reaches an agent.

The audio stays attached (it reaches the session inbox as before); the message text gains one line per note, such as
``[voice note, 0:12] Please buy milk``, or, when there are no words, the reason (``[voice note, 0:12: not
transcribed, because …]``), so the note is never lost. The router calls this only past its access gates, so audio from
a stranger who may not talk to the agent costs nothing. Caps keep one message from costing much: at most
``MAX_NOTES`` notes of at most ``MAX_AUDIO_BYTES`` and ``transcription_max_seconds`` each, ``CONCURRENT`` at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from nanoclaw_app.core.events import EventBus
from nanoclaw_app.core.messages import InboundMessage, IncomingAttachment
from nanoclaw_app.gateway.server import ModelGateway
from nanoclaw_app.services.audio_length import ogg_seconds
from nanoclaw_app.services.transcription import TranscriptionFailed, transcribe
from nanoclaw_app.settings import Settings

log = logging.getLogger(__name__)

MAX_AUDIO_BYTES = 25 * 1024 * 1024
"""OpenAI's own upload limit for transcription; Groq's free tier takes the same."""
MAX_NOTES = 3
"""Notes transcribed per message; more are delivered as files with a line saying so."""
CONCURRENT = 2
"""Transcriptions in flight over all chats."""
EXTRA_KEY = "voice_notes"
"""Where the notes' outcome is kept in the message (a held message routed again is not transcribed twice)."""


@dataclass(frozen=True, slots=True)
class Heard:
    """One audio attachment's outcome: the words, or why there are none."""

    name: str
    label: str
    seconds: float | None
    text: str = ""
    error: str = ""

    def line(self) -> str:
        """The line the agent (and the person, in the app) reads."""
        head = self.label + (f", {clock(self.seconds)}" if self.seconds is not None else "")
        if self.error:
            return f"[{head}: not transcribed, because {self.error}]"
        return f"[{head}] {self.text}" if self.text else f"[{head}: no speech heard]"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in the message's extras and shown by the app's chat."""
        return {"name": self.name, "seconds": self.seconds, "text": self.text, "error": self.error,
                "line": self.line()}


def clock(seconds: float) -> str:
    """``0:12``, ``3:05``, ``1:02:03``."""
    total = max(round(seconds), 0)
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _is_audio(attachment: IncomingAttachment) -> bool:
    return attachment.kind in ("voice", "audio") or (attachment.mime_type or "").startswith("audio/")


Shown = Callable[[InboundMessage, list[Heard]], Awaitable[None]]


class VoiceNotes:
    """Implements ``core.context.Transcriber`` over the model gateway."""

    def __init__(self, gateway: ModelGateway, settings: Callable[[], Settings], events: EventBus) -> None:
        """``settings`` is read per message, so turning transcription on or off applies to the next note."""
        self._gateway = gateway
        self._settings = settings
        self._events = events
        self._slots = asyncio.Semaphore(CONCURRENT)
        self.shown: Shown | None = None
        """Told the outcome of every message with notes (the app's chat shows it under the audio)."""

    async def transcribe(self, msg: InboundMessage, agent_group_id: str) -> InboundMessage:
        """The message with one line per audio attachment above its text; unchanged when turned off."""
        settings = self._settings()
        audio = [a for a in msg.attachments if _is_audio(a)]
        if not settings.voice_transcription or not audio or EXTRA_KEY in msg.extra:
            return msg
        heard = [await self._one(a, settings, agent_group_id) for a in audio[:MAX_NOTES]]
        heard += [Heard(a.name, _label(a), None, error=f"only {MAX_NOTES} recordings of one message are "
                        "transcribed") for a in audio[MAX_NOTES:]]
        lines = "\n".join(h.line() for h in heard)
        done = replace(msg, text=f"{lines}\n\n{msg.text}" if msg.text else lines,
                       extra={**msg.extra, EXTRA_KEY: [h.to_dict() for h in heard]})
        self._events.publish("voice.transcribed", channel_type=msg.channel_type, platform_id=msg.platform_id,
                             message_id=msg.message_id, agent_group_id=agent_group_id,
                             notes=[{"seconds": h.seconds, "ok": not h.error} for h in heard])
        if self.shown is not None:
            try:
                await self.shown(done, heard)
            except Exception:
                log.exception("voice notes: showing the transcript of message %s failed", msg.message_id)
        return done

    async def _one(self, attachment: IncomingAttachment, settings: Settings, agent_group_id: str) -> Heard:
        data = attachment.data
        label = _label(attachment)
        seconds = ogg_seconds(data)
        if len(data) > MAX_AUDIO_BYTES:
            return Heard(attachment.name, label, seconds, error=f"it is {len(data) / 2**20:.1f} MB, over the "
                         f"{MAX_AUDIO_BYTES // 2**20} MB that is sent for transcription")
        cap = settings.transcription_max_seconds
        if seconds is not None and seconds > cap:
            return Heard(attachment.name, label, seconds, error=f"it is longer than the {clock(cap)} that is "
                         "transcribed")
        try:
            async with self._slots:
                transcript = await transcribe(self._gateway, settings, agent_group_id, attachment.name, data,
                                              attachment.mime_type)
        except TranscriptionFailed as err:
            return Heard(attachment.name, label, seconds, error=str(err))
        except Exception as err:
            log.exception("voice notes: transcribing %r failed", attachment.name)
            return Heard(attachment.name, label, seconds, error=f"NanoClaw failed on it ({type(err).__name__})")
        return Heard(attachment.name, label, seconds if seconds is not None else transcript.seconds, transcript.text)


def _label(attachment: IncomingAttachment) -> str:
    return "voice note" if attachment.kind == "voice" else f"audio “{attachment.name}”"
