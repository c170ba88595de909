"""Connections to the outside (to an address already checked) and the byte pipe of a tunnel."""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from nanoclaw_app.egress.http1 import MAX_RESPONSE_HEAD, PIECE

CONNECT_SECONDS = 15.0
Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class UpstreamError(Exception):
    """The service could not be reached; ``str()`` is a plain reason the agent is shown in a 502."""


class UpstreamClosed(UpstreamError):
    """The service closed a connection before answering (a kept-alive one may have timed out meanwhile)."""


async def open_upstream(host: str, port: int, addresses: list[str], context: ssl.SSLContext | None = None) -> Stream:
    """A connection to the first of ``addresses`` that answers; with ``context``, TLS verified against ``host``."""
    problem = "it has no address"
    for address in addresses:
        try:
            async with asyncio.timeout(CONNECT_SECONDS):
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
