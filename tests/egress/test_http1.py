"""The strict parser and the body framing, fed exact bytes."""

from __future__ import annotations

import asyncio

import pytest

from nanoclaw_app.egress.http1 import (
    BadMessage,
    Framing,
    parse_request,
    parse_response,
    read_head,
    relay_body,
    request_framing,
    response_framing,
    split_authority,
)


class _Sink:
    """Just enough of a StreamWriter to collect what is relayed."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        return None


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=64 * 1024)
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def _relay(data: bytes, framing: Framing) -> bytes:
    sink = _Sink()
    await relay_body(_reader(data), sink, framing, 5)  # type: ignore[arg-type]
    return sink.data


def test_connect_sent_as_http_1_0_is_accepted() -> None:
    request = parse_request(b"CONNECT pypi.org:443 HTTP/1.0\r\n\r\n")
    assert (request.method, request.target, request.version) == ("CONNECT", "pypi.org:443", "HTTP/1.0")
    assert split_authority(request.target) == ("pypi.org", 443)
    assert split_authority("[2001:db8::1]:8443") == ("2001:db8::1", 8443)


@pytest.mark.parametrize("headers", [
    [(b"Content-Length", b"3"), (b"Transfer-Encoding", b"chunked")],
    [(b"Transfer-Encoding", b"gzip")],
    [(b"Transfer-Encoding", b"chunked"), (b"Transfer-Encoding", b"chunked")],
    [(b"Content-Length", b"3"), (b"Content-Length", b"4")],
    [(b"Content-Length", b"3, 4")],
    [(b"Content-Length", b"-1")],
    [(b"Content-Length", b"+3")],
])
def test_ambiguous_request_framing_is_refused(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(BadMessage):
        request_framing(headers)


def test_repeated_equal_lengths_are_one_length() -> None:
    assert request_framing([(b"Content-Length", b"3"), (b"content-length", b"3")]) == Framing("length", 3)


@pytest.mark.parametrize("head", [
    b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
    b"GET / HTTP/1.1\r\nX : a\r\n\r\n",
    b"GET / HTTP/1.1\r\nX:\x00a\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n",
    b"GET  / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/2\r\n\r\n",
    b"GET /a b HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"X: 1\r\n" * 101 + b"\r\n",
])
def test_malformed_heads_are_refused(head: bytes) -> None:
    with pytest.raises(BadMessage):
        parse_request(head)


async def test_an_overlong_head_is_refused() -> None:
    with pytest.raises(BadMessage):
        await read_head(_reader(b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n"))


async def test_chunked_bodies_are_reframed_with_their_trailers() -> None:
    body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\nNEXT"
    assert await _relay(body, Framing("chunked")) == b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n"


@pytest.mark.parametrize("body", [
    b"zz\r\nhello\r\n0\r\n\r\n",
    b"5\r\nhelloXX0\r\n\r\n",
    b"-1\r\n\r\n",
    b"5\nhello\r\n0\r\n\r\n",
    b"0\r\nBad Trailer: x\r\n\r\n",
])
async def test_malformed_chunks_are_refused(body: bytes) -> None:
    with pytest.raises((BadMessage, asyncio.IncompleteReadError)):
        await _relay(body, Framing("chunked"))


async def test_a_body_cut_short_is_noticed() -> None:
    with pytest.raises(asyncio.IncompleteReadError):
        await _relay(b"abc", Framing("length", 10))


def test_response_framing_follows_the_rules_for_bodiless_answers() -> None:
    with_length = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    assert response_framing("HEAD", with_length) == Framing("none")
    assert response_framing("GET", with_length) == Framing("length", 5)
    for status in (b"204 No Content", b"304 Not Modified", b"103 Early Hints"):
        assert response_framing("GET", parse_response(b"HTTP/1.1 " + status + b"\r\n\r\n")) == Framing("none")
    assert response_framing("GET", parse_response(b"HTTP/1.1 200 OK\r\n\r\n")) == Framing("eof")
    chunked = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert response_framing("GET", chunked) == Framing("chunked")
