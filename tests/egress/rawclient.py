"""A raw client for what no well-behaved HTTP library sends: exact bytes to the proxy, the answer as it comes."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path


async def connect_and_read(port: int, data: bytes) -> bytes:
    """Send ``data`` to the proxy and read until it closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
        await writer.wait_closed()


async def tunnel_to(port: int, target: str, cafile: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``CONNECT target`` through the proxy, then TLS inside it trusting ``cafile`` (for hand-made requests)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    await writer.start_tls(ssl.create_default_context(cafile=str(cafile)), server_hostname=target.split(":")[0])
    return reader, writer


async def read_to_end(reader: asyncio.StreamReader) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(), 30)
    except (ConnectionError, ssl.SSLError):
        return b""
