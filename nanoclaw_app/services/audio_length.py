"""How long a voice note is, read from its own bytes (Ogg Opus/Vorbis, which WhatsApp and Telegram both send).

The length a sender declares is not believed: a stranger's note decides what the transcription costs, so the cap on
seconds is checked against the file itself. Anything that is not a readable Ogg stream has no known length (None).
"""

from __future__ import annotations

import struct

_CAPTURE = b"OggS"
_HEADER = struct.Struct("<4sBBqIIIB")
"""An Ogg page header up to the segment count: capture, version, flags, granule position, serial, sequence, CRC."""


def _first_packet(data: bytes) -> bytes:
    if len(data) < _HEADER.size or not data.startswith(_CAPTURE):
        return b""
    segments = data[_HEADER.size - 1]
    table = data[_HEADER.size:_HEADER.size + segments]
    start = _HEADER.size + segments
    return data[start:start + sum(table)]


def _last_granule(data: bytes) -> int | None:
    """The granule position of the last complete page that has one (the stream's end, in samples)."""
    at = len(data)
    while (at := data.rfind(_CAPTURE, 0, at)) >= 0:
        if at + _HEADER.size <= len(data):
            capture, version, _, granule, *_ = _HEADER.unpack_from(data, at)
            if capture == _CAPTURE and version == 0 and granule >= 0:
                return int(granule)
    return None


def ogg_seconds(data: bytes) -> float | None:
    """The playing time of an Ogg Opus or Vorbis file in seconds, or None when the bytes do not tell."""
    packet = _first_packet(data)
    if packet.startswith(b"OpusHead") and len(packet) >= 19:
        rate, skip = 48000, int(struct.unpack_from("<H", packet, 10)[0])  # Opus granules count 48 kHz samples
    elif packet.startswith(b"\x01vorbis") and len(packet) >= 16:
        rate, skip = int(struct.unpack_from("<I", packet, 12)[0]), 0
    else:
        return None
    granule = _last_granule(data)
    if granule is None or rate <= 0:
        return None
    return max(granule - skip, 0) / rate
