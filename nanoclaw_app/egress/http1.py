"""Strict HTTP/1.1 heads and body framing for the egress proxy.

The agent's side is hostile: a request the proxy and the service could read differently (both Content-Length and
Transfer-Encoding, two lengths, folded header lines) could smuggle a second request past the credential check. Such a
message is refused outright (``BadMessage``: the connection is closed, nothing is forwarded). Bodies are relayed piece
by piece and never held whole.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

MAX_HEAD = 64 * 1024
"""The largest request head accepted, and the StreamReader limit of the agent's side."""
MAX_RESPONSE_HEAD = 256 * 1024
"""Services send bigger heads (cookies); the upstream's StreamReader limit."""
MAX_HEADERS = 100
PIECE = 64 * 1024
"""How much of a body is read and written at a time."""

Headers = list[tuple[bytes, bytes]]

_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_TARGET = re.compile(rb"^[\x21-\x7e]+$")
_VALUE_BAD = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_CHUNK_SIZE = re.compile(rb"^([0-9A-Fa-f]{1,15})[ \t]*(;[^\r\n]*)?\r\n$")

HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-authorization", b"proxy-authenticate",
                        b"proxy-connection", b"te", b"upgrade", b"expect"})
"""Headers that describe one hop; the proxy sets its own. ``upgrade`` goes back in for a 101 handshake."""


class BadMessage(Exception):
    """A message that is malformed or ambiguous; the connection it came on is closed."""


@dataclass(slots=True)
class Request:
    """A request head as received (header names keep their case; compare with ``name.lower()``)."""

    method: str
    target: str
    version: str
    headers: Headers


@dataclass(slots=True)
class Response:
    """A response head as received from the service."""

    version: str
    status: int
    reason: bytes
    headers: Headers
    raw: bytes


@dataclass(frozen=True, slots=True)
class Framing:
    """How a body ends: no body, a length, chunked, or when the sender closes (responses only)."""

    kind: Literal["none", "length", "chunked", "eof"]
    length: int = 0


NO_BODY = Framing("none")


async def read_head(reader: asyncio.StreamReader, limit: int = MAX_HEAD) -> bytes | None:
    """The bytes of one head up to its blank line, or None when the peer closed cleanly before sending one."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as err:
        if not err.partial.strip():
            return None
        raise BadMessage("the connection ended inside a message head") from err
    except asyncio.LimitOverrunError as err:
        raise BadMessage("the message head is too long") from err
    if len(head) > limit:
        raise BadMessage("the message head is too long")
    return head.lstrip(b"\r\n")  # a stray empty line before a request is allowed (RFC 9112 2.2)


def parse_request(head: bytes) -> Request:
    """A request head checked strictly; ``BadMessage`` otherwise."""
    first, headers = _split(head)
    parts = first.split(b" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not _TARGET.match(parts[1]):
        raise BadMessage("bad request line")
    if parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise BadMessage("not HTTP/1.x")
    return Request(parts[0].decode("ascii"), parts[1].decode("ascii"), parts[2].decode("ascii"), headers)


def parse_response(head: bytes) -> Response:
    """A response head; ``BadMessage`` when it cannot be relayed safely."""
    first, headers = _split(head)
    version, _, rest = first.partition(b" ")
    code, _, reason = rest.partition(b" ")
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
        raise BadMessage("bad status line")
    return Response(version.decode("ascii"), int(code), reason, headers, head)


def _split(head: bytes) -> tuple[bytes, Headers]:
    if not head.endswith(b"\r\n\r\n"):
        raise BadMessage("a message head must end with an empty line")
    lines = head[:-4].split(b"\r\n")
    if len(lines) - 1 > MAX_HEADERS:
        raise BadMessage("too many header fields")
    headers: Headers = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            raise BadMessage("obsolete line folding")
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.match(name):
            raise BadMessage("bad header name")
        value = value.strip(b" \t")
        if _VALUE_BAD.search(value):
            raise BadMessage("control character in a header value")
        headers.append((name, value))
    if b"\n" in lines[0] or b"\r" in lines[0]:
        raise BadMessage("bare line break")
    return lines[0], headers


def values(headers: Headers, name: bytes) -> list[bytes]:
    """Every value of a header (``name`` in lower case)."""
    return [value for key, value in headers if key.lower() == name]


def _tokens(headers: Headers, name: bytes) -> list[bytes]:
    return [item.strip().lower() for value in values(headers, name) for item in value.split(b",") if item.strip()]


def request_framing(headers: Headers) -> Framing:
    """How a request body is delimited; anything two parties could read differently is a ``BadMessage``."""
    codings = _tokens(headers, b"transfer-encoding")
    lengths = values(headers, b"content-length")
    if values(headers, b"transfer-encoding"):
        if lengths:
            raise BadMessage("both Content-Length and Transfer-Encoding")
        if codings != [b"chunked"]:
            raise BadMessage("a transfer coding other than chunked")
        return Framing("chunked")
    if lengths:
        return Framing("length", _length(lengths))
    return NO_BODY


def response_framing(method: str, response: Response) -> Framing:
    """How a response body is delimited (RFC 9112 6.3): none for HEAD/1xx/204/304, else chunked, length or EOF."""
    if method == "HEAD" or response.status < 200 or response.status in (204, 304):
        return NO_BODY
    if values(response.headers, b"transfer-encoding"):
        codings = _tokens(response.headers, b"transfer-encoding")
        return Framing("chunked") if codings and codings[-1] == b"chunked" else Framing("eof")
    lengths = values(response.headers, b"content-length")
    if lengths:
        return Framing("length", _length(lengths))
    return Framing("eof")


def _length(lengths: list[bytes]) -> int:
    items = {item.strip() for value in lengths for item in value.split(b",")}
    if len(items) != 1:
        raise BadMessage("conflicting Content-Length")
    text = items.pop()
    if not text.isdigit() or len(text) > 18:
        raise BadMessage("bad Content-Length")
    return int(text)


def wants_close(version: str, headers: Headers) -> bool:
    """Whether this message ends its connection (``Connection: close``, or HTTP/1.0 without keep-alive)."""
    tokens = _tokens(headers, b"connection")
    if b"close" in tokens:
        return True
    return version == "HTTP/1.0" and b"keep-alive" not in tokens


def end_to_end(headers: Headers) -> Headers:
    """The headers without hop-by-hop ones, including those the Connection header names."""
    named = set(_tokens(headers, b"connection"))
    return [(key, value) for key, value in headers if key.lower() not in HOP_BY_HOP and key.lower() not in named]


def serialize(first_line: bytes, headers: Headers) -> bytes:
    """A head ready to send."""
    return first_line + b"\r\n" + b"".join(key + b": " + value + b"\r\n" for key, value in headers) + b"\r\n"


def split_authority(authority: str, default_port: int | None = None) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``) split and checked; ``BadMessage`` when it is not one."""
    if authority.startswith("["):
        host, bracket, rest = authority[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise BadMessage("bad authority")
        port_text = rest[1:]
    else:
        host, colon, port_text = authority.rpartition(":")
        if not colon:
            host, port_text = authority, ""
    if not port_text:
        if default_port is None:
            raise BadMessage("a port is needed")
        port = default_port
    elif port_text.isdigit() and len(port_text) <= 5:
        port = int(port_text)
    else:
        raise BadMessage("bad port")
    if not host or not 0 < port < 65536 or not re.fullmatch(r"[A-Za-z0-9._:%-]+", host):
        raise BadMessage("bad authority")
    return host.lower().rstrip("."), port


async def relay_body(src: asyncio.StreamReader, dst: asyncio.StreamWriter, framing: Framing,
                     idle: float) -> None:
    """Copy one body from ``src`` to ``dst`` as it arrives; chunked bodies are re-framed from checked sizes.

    ``idle`` bounds each wait for the next piece. A malformed chunk is a ``BadMessage``; a body cut short is
    ``asyncio.IncompleteReadError``.
    """
    if framing.kind == "length":
        await _copy(src, dst, framing.length, idle)
    elif framing.kind == "chunked":
        await _relay_chunked(src, dst, idle)
    elif framing.kind == "eof":
        while True:
            async with asyncio.timeout(idle):
                piece = await src.read(PIECE)
            if not piece:
                return
            dst.write(piece)
            await dst.drain()


async def _copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter, remaining: int, idle: float) -> None:
    while remaining:
        async with asyncio.timeout(idle):
            piece = await src.read(min(remaining, PIECE))
        if not piece:
            raise asyncio.IncompleteReadError(b"", remaining)
        dst.write(piece)
        remaining -= len(piece)
        await dst.drain()


async def _relay_chunked(src: asyncio.StreamReader, dst: asyncio.StreamWriter, idle: float) -> None:
    while True:
        line = await _line(src, idle)
        match = _CHUNK_SIZE.match(line)
        if match is None:
            raise BadMessage("bad chunk size line")
        size = int(match.group(1), 16)
        dst.write(b"%x\r\n" % size)  # chunk extensions are dropped: nothing downstream needs them
        if size == 0:
            break
        await _copy(src, dst, size, idle)
        async with asyncio.timeout(idle):
            end = await src.readexactly(2)
        if end != b"\r\n":
            raise BadMessage("a chunk does not end where its size says")
        dst.write(b"\r\n")
    trailer = b""
    while True:  # trailer fields, then the empty line
        line = await _line(src, idle)
        trailer += line
        if line == b"\r\n":
            break
        if len(trailer) > MAX_HEAD:
            raise BadMessage("the trailer is too long")
    if trailer != b"\r\n":
        _split(b"-\r\n" + trailer)  # the same checks as header fields
    dst.write(trailer)
    await dst.drain()


async def _line(src: asyncio.StreamReader, idle: float) -> bytes:
    try:
        async with asyncio.timeout(idle):
            return await src.readuntil(b"\r\n")
    except asyncio.LimitOverrunError as err:
        raise BadMessage("a chunk line is too long") from err


_REASONS = {400: b"Bad Request", 403: b"Forbidden", 407: b"Proxy Authentication Required", 502: b"Bad Gateway"}


def plain_response(status: int, text: str, extra: Sequence[tuple[bytes, bytes]] = ()) -> bytes:
    """A whole response the proxy itself gives: the reason as plain text, and the connection ends after it."""
    body = text.encode("utf-8") + b"\n"
    more = b"".join(key + b": " + value + b"\r\n" for key, value in extra)
    return (b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n%s"
            b"Connection: close\r\n\r\n" % (status, _REASONS.get(status, b"Error"), len(body), more)) + body
