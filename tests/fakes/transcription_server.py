"""A fake OpenAI-compatible transcription server (``POST /v1/audio/transcriptions``) on 127.0.0.1.

It answers the shape OpenAI, Groq and whisper.cpp's server share: a multipart upload with ``file`` and ``model`` in,
``{"text": ...}`` out (plus ``duration`` for ``verbose_json`` and ``usage.seconds``, as OpenAI reports whisper-1).
``fail`` makes the next calls answer with an error status; every upload is recorded with its headers, so a test can
see which key (if any) reached it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from aiohttp import BodyPartReader, web


@dataclass
class Upload:
    """One transcription request as the server saw it."""

    model: str
    file_name: str
    data: bytes
    response_format: str
    authorization: str
    fields: dict[str, str] = field(default_factory=dict)


class FakeTranscriber:
    """Transcribes every upload as ``transcript`` (default: a fixed sentence), reporting ``seconds`` of audio."""

    def __init__(self, transcript: str = "Please buy milk and bread on the way home.", seconds: float = 12.0) -> None:
        self.transcript = transcript
        self.seconds = seconds
        self.uploads: list[Upload] = []
        self.all_headers: list[dict[str, str]] = []
        """Lower-cased headers of every request, whatever its path."""
        self.failure: tuple[int, str] | None = None
        self._runner: web.AppRunner | None = None
        self._port = 0

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = next(int(a[1]) for a in self._runner.addresses if isinstance(a, tuple))

    async def stop(self) -> None:
        """Close the server (a later call then finds nothing listening)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTranscriber:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def v1_url(self) -> str:
        """The base URL a client is given (``…/v1``)."""
        return f"http://127.0.0.1:{self._port}/v1"

    def fail(self, status: int, message: str = "the model is overloaded") -> None:
        """Answer every following call with ``status`` and an OpenAI-shaped error."""
        self.failure = (status, message)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.all_headers.append({k.lower(): v for k, v in request.headers.items()})
        if request.path != "/v1/audio/transcriptions" or request.method != "POST":
            return web.json_response({"error": {"message": "not found"}}, status=404)
        reader = await request.multipart()
        fields: dict[str, str] = {}
        file_name, data = "", b""
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":
                file_name = part.filename or ""
                data = bytes(await part.read())
            elif part.name:
                fields[part.name] = (await part.read()).decode()
        self.uploads.append(Upload(model=fields.get("model", ""), file_name=file_name, data=data,
                                   response_format=fields.get("response_format", "json"),
                                   authorization=request.headers.get("Authorization", ""), fields=fields))
        if self.failure is not None:
            status, message = self.failure
            return web.json_response({"error": {"message": message, "type": "server_error"}}, status=status)
        body: dict[str, object] = {"text": self.transcript, "usage": {"type": "duration", "seconds": self.seconds}}
        if fields.get("response_format") == "verbose_json":
            body.update(task="transcribe", language="english", duration=self.seconds, segments=[])
        return web.json_response(body)


def _ogg_page(packet: bytes, granule: int, sequence: int, flags: int) -> bytes:
    segments = [255] * (len(packet) // 255) + [len(packet) % 255]
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, 0x4E43, sequence, 0, len(segments))
    return header + bytes(segments) + packet


def ogg_voice(seconds: float, *, pre_skip: int = 312) -> bytes:
    """An Ogg Opus file as WhatsApp and Telegram send voice notes, ``seconds`` long (its audio packets are filler)."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, pre_skip, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 4) + b"test" + struct.pack("<I", 0)
    audio = bytes(range(200))
    return (_ogg_page(head, 0, 0, 2) + _ogg_page(tags, 0, 1, 0)
            + _ogg_page(audio, pre_skip + int(seconds * 48000), 2, 4))
