"""The egress proxy: what an agent container's connection to the outside goes through.

Per connection: one request head. ``CONNECT host:port`` is checked (public address, the agent's sites) and becomes a
byte tunnel, or, when a credential applies to the host, an intercepted connection (``mitm.py``) where each request is
authorized and given its credential. An absolute ``http://`` request is checked the same way and forwarded alone,
never with a credential (it would cross the network in clear). Anything malformed ends the connection unanswered;
whatever goes wrong with one connection stays with it. Header values and query strings are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import urllib.parse
from collections.abc import Collection

from nanoclaw_app.egress.addresses import IP, NotFound, Refused, resolve
from nanoclaw_app.egress.ca import EgressCA
from nanoclaw_app.egress.caller_token import proves
from nanoclaw_app.egress.http1 import (
    NO_BODY,
    BadMessage,
    Headers,
    Request,
    end_to_end,
    parse_request,
    plain_response,
    relay_body,
    request_framing,
    serialize,
    split_authority,
    values,
)
from nanoclaw_app.egress.mitm import InterceptedConnection, Limits, authority, next_head, relay_response
from nanoclaw_app.egress.policy import Caller, ConnectPlan, EgressPolicy, EgressRecord
from nanoclaw_app.egress.tunnel import NetworkProxy, UpstreamError, close_stream, open_upstream, pipe_both

log = logging.getLogger(__name__)

_ENDED = (BadMessage, ConnectionError, asyncio.IncompleteReadError, TimeoutError, ssl.SSLError, UnicodeError)
"""What ends one connection in the ordinary way (a hostile or impatient client, a service gone)."""


class EgressProxy:
    """Serves agent connections; every decision about a destination or a credential is the policy's."""

    def __init__(self, policy: EgressPolicy, ca: EgressCA, upstream_context: ssl.SSLContext, *,
                 exceptions: Collection[str] = (), own_addresses: Collection[IP] = (),
                 limits: Limits | None = None, network_proxy: NetworkProxy | None = None) -> None:
        self._policy = policy
        self._network_proxy = network_proxy
        self._ca = ca
        self._upstream_context = upstream_context
        self._exceptions = frozenset(exceptions)
        self._own = frozenset(own_addresses)
        self._limits = limits or Limits()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, caller: Caller, *,
                     token: str | None = None) -> None:
        """Serve one connection of ``caller`` to its end; never raises (a cancellation passes through).

        With ``token`` (a listener on a host port, which any local program or container could find), the request
        must prove it is the caller's with ``Proxy-Authorization: Basic`` and the token as its password.
        """
        try:
            head = await next_head(reader, self._limits, self._limits.head)
            if head is None:
                return
            request = parse_request(head)
            if token is not None and not proves(request.headers, token):
                log.warning("egress: a connection to the listener of session %s did not carry its token; refused",
                            caller.session_id)
                writer.write(plain_response(407, "this listener belongs to another container",
                                            [(b"Proxy-Authenticate", b'Basic realm="NanoClaw"')]))
                await writer.drain()
                return
            await self._dispatch(request, reader, writer, caller)
        except _ENDED as err:
            log.debug("egress: a connection of session %s ended (%s)", caller.session_id, type(err).__name__)
        except Exception:
            log.exception("egress: a connection of session %s failed", caller.session_id)
        finally:
            await close_stream(writer)

    async def _dispatch(self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        caller: Caller) -> None:
        if request.method == "CONNECT":
            host, port = split_authority(request.target)
            await self._connect(host, port, reader, writer, caller)
        elif request.target.startswith("http://"):
            await self._plain(request, reader, writer, caller)
        else:
            writer.write(plain_response(400, "this is NanoClaw's proxy: use it as HTTPS_PROXY/HTTP_PROXY"))
            await writer.drain()

    async def _check(self, host: str, port: int, writer: asyncio.StreamWriter,
                     caller: Caller) -> tuple[list[str], ConnectPlan] | None:
        """The checked addresses and the policy's plan, or None once the agent was told why not."""
        try:
            addresses = await resolve(host, port, exceptions=self._exceptions, own=self._own)
        except Refused as err:
            await self._refuse(host, port, str(err), writer, caller)
            return None
        except NotFound as err:
            writer.write(plain_response(502, str(err)))
            await writer.drain()
            return None
        plan = await self._policy.plan_connect(caller, host, port)
        if plan.refused:
            await self._refuse(host, port, plan.refused, writer, caller)
            return None
        self._policy.record(EgressRecord(caller=caller, kind="connect", host=host, port=port, decision="allowed"))
        return addresses, plan

    async def _refuse(self, host: str, port: int, reason: str, writer: asyncio.StreamWriter, caller: Caller) -> None:
        log.info("egress: session %s may not reach %s:%s (%s)", caller.session_id, host, port, reason)
        self._policy.record(EgressRecord(caller=caller, kind="connect", host=host, port=port, decision="refused",
                                         reason=reason))
        writer.write(plain_response(403, reason))
        await writer.drain()

    async def _connect(self, host: str, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       caller: Caller) -> None:
        checked = await self._check(host, port, writer, caller)
        if checked is None:
            return
        addresses, plan = checked
        if not plan.intercept:
            try:
                upstream = await open_upstream(host, port, addresses, via=self._via(host, port))
            except UpstreamError as err:
                writer.write(plain_response(502, str(err)))
                await writer.drain()
                return
            try:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await pipe_both((reader, writer), upstream, self._limits.grace)
            finally:
                await close_stream(upstream[1])
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await writer.start_tls(self._ca.context_for(host), ssl_handshake_timeout=self._limits.head)
        await InterceptedConnection(policy=self._policy, caller=caller, host=host, port=port, addresses=addresses,
                                    upstream_context=self._upstream_context, limits=self._limits,
                                    client=(reader, writer), via=self._via(host, port)).run()

    def _via(self, host: str, port: int) -> NetworkProxy | None:
        """The network's proxy, except for the development exceptions (local fakes it could never reach)."""
        return None if f"{host}:{port}" in self._exceptions else self._network_proxy

    async def _plain(self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     caller: Caller) -> None:
        """One plain-HTTP request, forwarded as it is (minus hop-by-hop headers) and never given a credential."""
        parts = urllib.parse.urlsplit(request.target)
        host, port = split_authority(parts.netloc.rpartition("@")[2], 80)
        framing = request_framing(request.headers)
        checked = await self._check(host, port, writer, caller)
        if checked is None:
            return
        headers: Headers = [(b"Host", authority(host, port, 80))]
        headers += [(key, value) for key, value in end_to_end(request.headers) if key.lower() != b"host"]
        headers.append((b"Connection", b"close"))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            upstream = await open_upstream(host, port, checked[0], via=self._via(host, port))
        except UpstreamError as err:
            writer.write(plain_response(502, str(err)))
            await writer.drain()
            return
        try:
            upstream[1].write(serialize(f"{request.method} {target} HTTP/1.1".encode("ascii"), headers))
            if framing is not NO_BODY and any(b"100-continue" in v.lower() for v in values(request.headers,
                                                                                          b"expect")):
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await relay_body(reader, upstream[1], framing, self._limits.idle)
            await upstream[1].drain()
            try:  # Upgrade was taken out with the hop-by-hop headers, so no 101 comes back
                await relay_response(request.method, host, upstream, writer, self._limits, True)
            except UpstreamError as err:
                writer.write(plain_response(502, str(err)))
                await writer.drain()
        finally:
            await close_stream(upstream[1])
