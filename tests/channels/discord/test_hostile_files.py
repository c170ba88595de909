"""A stranger's files on Discord: the name, the size and the type come from whoever sent them, and none of them is
trusted — the file lands inside the session inbox under a plain name, a file over the limit is not downloaded, and
a type the bytes contradict is not believed.
"""

from __future__ import annotations

import struct
import zlib

import pytest

from nanoclaw_app.channels.received_files import safe_name
from nanoclaw_app.host import Host
from nanoclaw_app.settings import Settings, load_settings
from tests.channels.discord.conftest import dm_id, dm_session, inbound_contents, pair
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_model import OWNER

LIMIT = 4096


@pytest.fixture
def dc_settings(settings: Settings, fake: FakeDiscord) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2, runtime="local",
                         discord_api_base_url=fake.api_base, discord_gateway_url=fake.gateway_url,
                         discord_guild_ready_timeout=0.05, max_attachment_bytes=LIMIT)


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x10\x20\x30"))
            + chunk(b"IEND", b""))


async def test_hostile_names_sizes_and_types_are_handled_safely(
    discord_host: Host, fake: FakeDiscord, agent_id: str
) -> None:
    await pair(discord_host, fake)
    sent = fake.push_dm(OWNER, "files", attachments=[
        ("..\\..\\..\\escape.sh", b"#!/bin/sh\necho owned\n", "text/x-sh"),
        ("holiday.png", b"\x7fELF not a picture at all", "image/png"),
        ("invoice.pdf\u202egnp.exe", b"%PDF-1.7 tiny", "application/pdf"),
        ("page.html", png(), "text/html"),
        ("huge.bin", b"x" * (LIMIT + 1), "application/octet-stream"),
    ])
    await fake.wait_for(lambda: any(t.startswith("echo: files") for t in fake.texts(dm_id(fake))))
    session, folder = await dm_session(discord_host, fake, agent_id)
    [content] = await inbound_contents(discord_host, folder)

    inbox = folder / "inbox" / sent["id"]
    saved = sorted(p.name for p in inbox.iterdir())
    assert all(p.resolve().is_relative_to(inbox.resolve()) for p in inbox.iterdir())
    assert not (folder / "escape.sh").exists()
    assert not any("\\" in name or "\u202e" in name for name in saved)
    assert len(saved) == 4  # the huge one was not downloaded

    by_name = {a["name"]: a for a in content["attachments"]}
    disguised = by_name["holiday.png"]
    assert (disguised["kind"], disguised["mime_type"]) == ("document", "application/octet-stream")
    real_image = by_name["page.html"]
    assert (real_image["kind"], real_image["mime_type"]) == ("image", "image/png")
    assert "huge.bin was not downloaded" in content["text"]
    assert "limit" in content["text"]
    huge_downloads = [c for c in fake.calls if c.method == "GET" and c.path.endswith("/huge.bin")]
    assert huge_downloads == []
    assert session.id


def test_a_file_name_cannot_name_a_folder_or_hide_its_end() -> None:
    for hostile in ("../../etc/passwd", "..\\..\\boot.ini", "a/b/c.txt", ".bashrc", "x\x00y.txt", "", "   "):
        name = safe_name(hostile, "fallback")
        assert not {"/", "\\", "\x00"} & set(name)
        assert not name.startswith(".")
        assert name
