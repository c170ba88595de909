"""One intercepted connection: the agent's requests, each checked and given its credential, sent to the service.

The agent talks TLS to the proxy (a leaf for the host from the install CA); the proxy keeps one verified TLS
connection to the service for the whole client connection. Requests are handled one at a time: the policy decides
(and may wait for a person) while the body still sits in the agent's socket, so a held request costs no memory.
``Host`` is always the host the agent connected to, so a credential cannot be routed to another site that shares the
service's front end.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import urllib.parse
from dataclasses import dataclass

from nanoclaw_app.egress.http1 import (
    MAX_RESPONSE_HEAD,
    NO_BODY,
    BadMessage,
    Framing,
    Headers,
    Request,
    Response,
    end_to_end,
    parse_request,
    parse_response,
    plain_response,
    read_head,
    relay_body,
    request_framing,
    response_framing,
    serialize,
    values,
    wants_close,
)
from nanoclaw_app.egress.policy import Caller, EgressPolicy, EgressRecord, RequestVerdict, inject, path_only
from nanoclaw_app.egress.tunnel import (
    NetworkProxy,
    Stream,
    UpstreamClosed,
    UpstreamError,
    close_stream,
    open_upstream,
    pipe_both,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limits:
    """How long the proxy waits for the agent and the service."""

    head: float = 30.0
    """For a request head once its first byte arrived (slow heads hold a connection for nothing)."""
    idle: float = 300.0
    """Between requests on a kept-alive connection, and for each piece of a body or the service's answer."""
    grace: float = 5.0
    """A tunnel's other direction, once one direction ended."""


def authority(host: str, port: int, default: int) -> bytes:
    """``Host`` for a host and port (IPv6 in brackets, the scheme's port left out)."""
    shown = f"[{host}]" if ":" in host else host
    return (shown if port == default else f"{shown}:{port}").encode("ascii")


async def next_head(reader: asyncio.StreamReader, limits: Limits, first_wait: float) -> bytes | None:
    """The next request head: up to ``first_wait`` for it to start, then ``limits.head`` for the rest."""
    try:
        async with asyncio.timeout(first_wait):
            first = await reader.readexactly(1)
    except asyncio.IncompleteReadError:
        return None
    async with asyncio.timeout(limits.head):
        rest = await read_head(reader)
    if rest is None:
        raise BadMessage("the connection ended inside a message head")
    return (first + rest).lstrip(b"\r\n")


async def relay_response(method: str, host: str, upstream: Stream, client: asyncio.StreamWriter, limits: Limits,
                         close: bool) -> tuple[Response, bool]:
    """Relay the service's answer (1xx first); returns it and whether the client connection must end after it.

    Until the head is relayed, trouble is an ``UpstreamError`` (the caller answers 502); after it, the client
    connection is cut. On a 101 the caller pipes both connections.
    """
    ureader = upstream[0]
    while True:
        try:
            async with asyncio.timeout(limits.idle):
                head = await read_head(ureader, MAX_RESPONSE_HEAD)
        except (ConnectionError, ssl.SSLError) as err:
            raise UpstreamClosed(f"{host} closed the connection before answering") from err
        except (TimeoutError, BadMessage) as err:
            raise UpstreamError(f"{host} did not give an answer NanoClaw could read in time") from err
        if head is None:
            raise UpstreamClosed(f"{host} closed the connection before answering")
        try:
            response = parse_response(head)
        except BadMessage as err:
            raise UpstreamError(f"{host} sent an answer that is not valid HTTP") from err
        if 100 <= response.status < 200 and response.status != 101:
            client.write(head)
            continue
        break
    framing = response_framing(method, response)
    headers = end_to_end(response.headers)
    if framing.kind == "chunked":
        headers = [(key, value) for key, value in headers if key.lower() != b"content-length"]
    if response.status == 101:
        headers += [(b"Connection", b"Upgrade"), *((b"Upgrade", value) for value in values(response.headers,
                                                                                            b"upgrade"))]
    close = close or framing.kind == "eof" or wants_close(response.version, response.headers)
    if close and response.status != 101:
        headers.append((b"Connection", b"close"))
    client.write(serialize(b"HTTP/1.1 %d %s" % (response.status, response.reason), headers))
    if response.status == 101:
        await client.drain()
        return response, True
    await relay_body(ureader, client, framing, limits.idle)
    await client.drain()
    return response, close


class InterceptedConnection:
    """The request loop of one CONNECT whose TLS the proxy terminated."""

    def __init__(self, *, policy: EgressPolicy, caller: Caller, host: str, port: int, addresses: list[str],
                 upstream_context: ssl.SSLContext, limits: Limits, client: Stream,
                 via: NetworkProxy | None = None) -> None:
        self._policy = policy
        self._caller = caller
        self._host = host
        self._port = port
        self._addresses = addresses
        self._context = upstream_context
        self._via = via
        self._limits = limits
        self._reader, self._writer = client
        self._upstream: Stream | None = None

    async def run(self) -> None:
        """Serve requests until either side ends the connection."""
        try:
            wait = self._limits.head
            while await self._one(wait):
                wait = self._limits.idle
        finally:
            await self._drop_upstream()

    async def _one(self, first_wait: float) -> bool:
        head = await next_head(self._reader, self._limits, first_wait)
        if head is None:
            return False
        request = parse_request(head)
        target = self._origin_form(request)
        framing = request_framing(request.headers)
        if len(values(request.headers, b"host")) > 1:
            raise BadMessage("more than one Host")
        path = path_only(target)
        verdict = await self._authorize(request.method, path)
        if verdict.refused:
            self._writer.write(plain_response(403, verdict.refused))
            await self._writer.drain()
            self._record(request.method, path, verdict, 403)
            return False
        headers: Headers = [(b"Host", authority(self._host, self._port, 443))]
        headers += [(key, value) for key, value in end_to_end(request.headers) if key.lower() != b"host"]
        target_bytes = target.encode("ascii")
        if verdict.injection is not None:
            headers, target_bytes = inject(headers, target_bytes, verdict.injection)
        close = wants_close(request.version, request.headers)
        upgrade = values(request.headers, b"upgrade")
        if upgrade:
            headers += [(b"Connection", b"Upgrade"), *((b"Upgrade", value) for value in upgrade)]
        elif close:
            headers.append((b"Connection", b"close"))
        out = serialize(request.method.encode("ascii") + b" " + target_bytes + b" HTTP/1.1", headers)
        expect = any(b"100-continue" in value.lower() for value in values(request.headers, b"expect"))
        try:
            upstream, retry = await self._send(out, framing, expect and framing is not NO_BODY)
            try:
                response, close = await relay_response(request.method, self._host, upstream, self._writer,
                                                       self._limits, close)
            except UpstreamClosed:
                if not retry:
                    raise
                upstream = await self._resend(out)
                response, close = await relay_response(request.method, self._host, upstream, self._writer,
                                                       self._limits, close)
        except UpstreamError as err:
            self._record(request.method, path, verdict, 502)
            self._writer.write(plain_response(502, str(err)))
            await self._writer.drain()
            return False
        self._record(request.method, path, verdict, response.status)
        if response.status == 101:
            await pipe_both((self._reader, self._writer), upstream, self._limits.grace)
            return False
        if close or wants_close(response.version, response.headers):
            await self._drop_upstream()
        return not close

    def _origin_form(self, request: Request) -> str:
        target = request.target
        if target.startswith("/") or (target == "*" and request.method == "OPTIONS"):
            return target
        parts = urllib.parse.urlsplit(target)
        if parts.scheme != "https" or (parts.hostname or "") != self._host or (parts.port or 443) != self._port:
            raise BadMessage("a request for another host inside an intercepted connection")
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    async def _authorize(self, method: str, path: str) -> RequestVerdict:
        try:
            return await self._policy.authorize(self._caller, method, self._host, self._port, path)
        except Exception:
            log.exception("egress: deciding on %s %s%s for session %s failed", method, self._host, path,
                          self._caller.session_id)
            return RequestVerdict(refused="NanoClaw could not check this request; see NanoClaw's log",
                                  decision="refused")

    async def _send(self, head: bytes, framing: Framing, expect: bool) -> tuple[Stream, bool]:
        """Send the request on the kept upstream connection, or a new one.

        Also says whether it may be sent again on a fresh connection should the kept one turn out closed by the
        service meanwhile (only a bodiless request on a reused connection).
        """
        reused = self._upstream is not None and not self._upstream[0].at_eof()
        if not reused:
            await self._drop_upstream()
            self._upstream = await open_upstream(self._host, self._port, self._addresses, self._context, self._via)
        assert self._upstream is not None
        upstream = self._upstream
        upstream[1].write(head)
        if expect:
            self._writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            await relay_body(self._reader, upstream[1], framing, self._limits.idle)
            await upstream[1].drain()
        except (ConnectionError, ssl.SSLError) as err:
            if not reused or framing is not NO_BODY:
                raise UpstreamError(f"the connection to {self._host} broke while sending the request") from err
        return upstream, reused and framing is NO_BODY

    async def _resend(self, head: bytes) -> Stream:
        await self._drop_upstream()
        self._upstream = await open_upstream(self._host, self._port, self._addresses, self._context, self._via)
        self._upstream[1].write(head)
        return self._upstream

    async def _drop_upstream(self) -> None:
        if self._upstream is not None:
            writer, self._upstream = self._upstream[1], None
            await close_stream(writer)

    def _record(self, method: str, path: str, verdict: RequestVerdict, status: int) -> None:
        if verdict.credential_id is None and not verdict.refused:
            return
        self._policy.record(EgressRecord(
            caller=self._caller, kind="request", host=self._host, port=self._port, decision=verdict.decision,
            method=method, path=path, credential_id=verdict.credential_id, credential_name=verdict.credential_name,
            approved_by=verdict.approved_by, status_code=status, reason=verdict.refused))
