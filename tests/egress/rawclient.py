"""A raw client for what no well-behaved HTTP library sends: exact bytes to the proxy, the answer as it comes."""

from __future__ import annotations

import asyncio
import base64
import ssl
from pathlib import Path

from nanoclaw_app.egress.caller_token import USER
from nanoclaw_app.egress.server import EgressAccess


def authorized(data: bytes, access: EgressAccess) -> bytes:
    """``data`` with the listener's token after its first line, as a client given the proxy address sends it."""
    first, sep, rest = data.partition(b"\r\n")
    if not sep or access.token is None:
        return data
    proof = base64.b64encode(f"{USER}:{access.token}".encode())
    return first + b"\r\nProxy-Authorization: Basic " + proof + b"\r\n" + rest


async def connect_and_read(access: EgressAccess, data: bytes, *, token: bool = True) -> bytes:
    """Send ``data`` to the listener (with its token unless told not to) and read until it closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", access.port)
    try:
        writer.write(authorized(data, access) if token else data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
        await writer.wait_closed()


async def tunnel_to(access: EgressAccess, target: str,
                    cafile: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``CONNECT target`` through the proxy, then TLS inside it trusting ``cafile`` (for hand-made requests)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", access.port)
    writer.write(authorized(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode(), access))
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    await writer.start_tls(ssl.create_default_context(cafile=str(cafile)), server_hostname=target.split(":")[0])
    return reader, writer


async def read_to_end(reader: asyncio.StreamReader) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(), 30)
    except (ConnectionError, ssl.SSLError):
        return b""
