"""Connections to the outside (to an address already checked) and the byte pipe of a tunnel.

Where the network's own proxy is the only way out (a company network: the host's ``HTTPS_PROXY``), connections go
through it with ``CONNECT <checked address>:<port>``: the address this proxy checked, never the name, so the network's
proxy cannot be used to reach a host on the inside.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import ssl
import urllib.parse
from dataclasses import dataclass

from nanoclaw_app.egress.http1 import MAX_RESPONSE_HEAD, PIECE

CONNECT_SECONDS = 15.0
Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class UpstreamError(Exception):
    """The service could not be reached; ``str()`` is a plain reason the agent is shown in a 502."""


class UpstreamClosed(UpstreamError):
    """The service closed a connection before answering (a kept-alive one may have timed out meanwhile)."""


@dataclass(frozen=True, slots=True)
class NetworkProxy:
    """The network's own HTTP proxy that connections to the outside must go through."""

    host: str
    port: int
    authorization: bytes | None = None
    """``Proxy-Authorization`` value, from ``user:password@`` in its URL."""

    @classmethod
    def from_url(cls, url: str) -> NetworkProxy | None:
        """``http://[user:password@]host:port``; None for an empty or unusable URL (then connections go direct)."""
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "") or not parts.hostname:
            return None
        auth = None
        if parts.username is not None:
            raw = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            auth = b"Basic " + base64.b64encode(raw.encode())
        try:
            port = parts.port or 80
        except ValueError:
            return None
        return cls(parts.hostname, port, auth)


async def open_upstream(host: str, port: int, addresses: list[str], context: ssl.SSLContext | None = None,
                        via: NetworkProxy | None = None) -> Stream:
    """A connection to the first of ``addresses`` that answers; with ``context``, TLS verified against ``host``."""
    problem = "it has no address"
    for address in addresses:
        try:
            async with asyncio.timeout(CONNECT_SECONDS):
                if via is not None:
                    return await _through(via, address, port, host, context)
                return await asyncio.open_connection(
                    address, port, ssl=context, server_hostname=host if context is not None else None,
                    ssl_handshake_timeout=CONNECT_SECONDS if context is not None else None, limit=MAX_RESPONSE_HEAD)
        except ssl.SSLCertVerificationError as err:
            raise UpstreamError(f"could not reach {host}: its certificate is not trusted "
                                f"({err.verify_message or err.reason})") from err
        except ssl.SSLError as err:
            problem = f"the secure connection failed ({err.reason or err})"
        except TimeoutError:
            problem = "it did not answer in time"
        except ConnectionRefusedError:
            problem = "the connection was refused"
        except OSError as err:
            problem = err.strerror or type(err).__name__
    raise UpstreamError(f"could not reach {host}: {problem}")


async def _through(via: NetworkProxy, address: str, port: int, host: str, context: ssl.SSLContext | None) -> Stream:
    """A tunnel through the network's proxy to the checked address, then TLS to ``host`` inside it if asked."""
    reader, writer = await asyncio.open_connection(via.host, via.port, limit=MAX_RESPONSE_HEAD)
    try:
        target = f"[{address}]:{port}" if ipaddress.ip_address(address).version == 6 else f"{address}:{port}"
        head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n".encode("ascii")
        if via.authorization is not None:
            head += b"Proxy-Authorization: " + via.authorization + b"\r\n"
        writer.write(head + b"\r\n")
        await writer.drain()
        try:
            answer = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as err:
            raise UpstreamError(f"could not reach {host}: the network's proxy did not answer properly") from err
        status = answer.split(b" ", 2)[1] if answer.count(b" ") >= 1 else b""
        if status != b"200":
            line = answer.split(b"\r\n", 1)[0].decode("latin-1")
            raise UpstreamError(f"could not reach {host}: the network's proxy refused ({line})")
        if context is not None:
            await writer.start_tls(context, server_hostname=host, ssl_handshake_timeout=CONNECT_SECONDS)
        return reader, writer
    except BaseException:
        writer.close()
        raise


async def close_stream(writer: asyncio.StreamWriter, wait: float = 1.0) -> None:
    """Close and wait briefly; a peer that does not finish the TLS goodbye is cut off."""
    writer.close()
    try:
        async with asyncio.timeout(wait):
            await writer.wait_closed()
    except TimeoutError:
        writer.transport.abort()
    except (OSError, ssl.SSLError):
        pass


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while piece := await src.read(PIECE):
            dst.write(piece)
            await dst.drain()
    except (OSError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError, ssl.SSLError):
            if dst.can_write_eof():
                dst.write_eof()


async def pipe_both(one: Stream, other: Stream, grace: float) -> None:
    """Relay both ways until both ends are done; once one direction ends, the other gets ``grace`` seconds."""
    tasks = [asyncio.create_task(_pipe(one[0], other[1]), name="egress-pipe-out"),
             asyncio.create_task(_pipe(other[0], one[1]), name="egress-pipe-in")]
    try:
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if pending:
            await asyncio.wait(pending, timeout=grace)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
