"""The forwarding hot path: admit a container's call, swap its token for the real key, stream the reply back, meter it.

It speaks raw ASGI (mounted in the gateway's Litestar app) so that status, headers and body chunks pass through
exactly as the upstream sent them, each chunk the moment it arrives. Everything the gateway refuses on its own is
answered in the upstream API's error shape with a status the SDKs and the Claude CLI do not retry:
- 401 for an unknown or revoked token (what a wrong key gets from the real APIs), or a token used on another
  container's listener;
- 400/404/405 for a path or method outside ``upstream.ENDPOINTS`` (403 for the other provider's API): a container
  reaches only the endpoints a model client calls, never another path on the upstream's host with the key;
- 400 ``invalid_request_error`` when no key is set up or the daily spend cap is reached: the Anthropic API itself
  answers a billing problem ("credit balance is too low") with exactly this, so every client already shows the message
  and stops, where a 429 or 5xx would be retried for minutes and a 403/401 can start a re-login flow in the CLI;
- 502 when the upstream cannot be reached (retrying that later may well work);
- 503 while NanoClaw is shutting down.
Gateway errors also carry ``x-should-retry: false`` (4xx) which both SDKs honour.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

import httpx

from nanoclaw_app.core.events import EventBus
from nanoclaw_app.db import usage as usage_db
from nanoclaw_app.errors import ConfigError
from nanoclaw_app.gateway.metering import OpenAIStreamMeter, Usage, meter_for
from nanoclaw_app.gateway.pricing import PriceBook, audio_cost
from nanoclaw_app.gateway.spend import SpendTracker
from nanoclaw_app.gateway.tokens import SHARED, Grant, TokenRegistry, tokens_in
from nanoclaw_app.gateway.upstream import Upstream, endpoint_refusal, request_headers, response_headers
from nanoclaw_app.gateway.usage_log import UsageLog
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.timeutil import now_iso

log = logging.getLogger(__name__)

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MAX_REQUEST_BYTES = 64 * 1024 * 1024
"""Twice the Anthropic API's own request limit (32 MB); bigger bodies are refused before anything is forwarded."""

_API_NAMES = {"anthropic": "Anthropic", "openai": "OpenAI", "transcribe": "Transcription"}
_REFUSAL_KINDS = {400: ("invalid_request_error", "invalid_path"), 403: ("permission_error", "wrong_api"),
                  404: ("not_found_error", "unknown_endpoint"), 405: ("invalid_request_error", "method_not_allowed")}
"""Error type (both APIs' shapes) and OpenAI-style code of each endpoint refusal."""
LISTENER = "nanoclaw.listener"
"""Scope key naming the listener a request came in on (set by the gateway per container listener; absent: shared)."""


class _TooLarge(Exception):
    pass


class Proxy:
    """One per running gateway; ``handle`` serves one request of one upstream."""

    def __init__(self, *, client: httpx.AsyncClient, tokens: TokenRegistry, secrets: SecretStore,
                 spend: SpendTracker, prices: PriceBook, usage: UsageLog, events: EventBus,
                 cap_reached: Callable[[str], None]) -> None:
        self._client = client
        self._tokens = tokens
        self._secrets = secrets
        self._spend = spend
        self._prices = prices
        self._usage = usage
        self._events = events
        self._cap_reached = cap_reached
        self._warned_no_stream_usage: set[str] = set()
        self.stopping = False
        """Set by the gateway on stop: new calls get a 503, calls in flight end when the client is closed."""

    async def handle(self, upstream: Upstream, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one call to ``upstream``; never raises for anything a container can cause."""
        started = time.perf_counter()
        try:
            admitted = await self._admit(upstream, scope, receive, send)
            if admitted is not None:
                grant, method, url, headers, body = admitted
                await self._forward(upstream, grant, method, url, headers, body, receive, send, started)
        except Exception:  # a bug of ours; _forward never raises once the reply has started
            log.exception("model gateway: could not handle a %s call", upstream.name)
            await self._refuse(send, upstream, 500, "api_error", "NanoClaw's model gateway failed on this call; "
                               "see the NanoClaw log.", "gateway_error")

    async def _admit(self, upstream: Upstream, scope: Scope, receive: Receive, send: Send
                     ) -> tuple[Grant, str, str, list[tuple[bytes, bytes]], bytes] | None:
        """Every check that happens before a byte leaves the host; None when the call was answered here."""
        if self.stopping:
            await self._refuse(send, upstream, 503, "api_error", "NanoClaw is shutting down; try again when it is "
                               "running.", "gateway_stopping")
            return None
        raw_path: bytes = scope["raw_path"]  # undecoded, as the container sent it; uvicorn always provides it
        rest = raw_path[len(upstream.prefix):]
        if not raw_path.startswith(upstream.prefix) or (rest and not rest.startswith(b"/")):
            await self._refuse(send, upstream, 404, "not_found_error", "Unknown model gateway path.", "not_found")
            return None
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        grant = self._tokens.lookup(tokens_in(headers))
        if grant is None or grant.listener != scope.get(LISTENER, SHARED):
            if grant is None:
                log.info("model gateway: refused a %s call with an unknown or revoked token", upstream.name)
            else:  # copied out of the container it was issued to: worth the user's attention
                log.warning("model gateway: refused a %s call with the token of session %s from another container",
                            upstream.name, grant.session_id)
            self._events.publish("gateway.refused", reason="token" if grant is None else "listener",
                                 provider=upstream.name)
            await self._refuse(send, upstream, 401, "authentication_error", "This container's NanoClaw gateway token "
                               "is not valid (its session was stopped or restarted). The next message starts a new "
                               "container with a fresh token.", "invalid_api_key")
            return None
        if not await self._endpoint_allowed(upstream, grant, scope["method"], rest, send):
            return None
        key = await self._key(upstream, grant, send)
        if key is None:
            return None
        if self._spend.reached():
            text = self._spend.message()
            self._events.publish("gateway.refused", reason="spend_cap", provider=upstream.name,
                                 session_id=grant.session_id, agent_group_id=grant.agent_group_id)
            if self._spend.first_notice_today():
                self._cap_reached(text)
            await self._refuse(send, upstream, 400, "invalid_request_error", text, "daily_spend_cap_reached")
            return None
        try:
            body = await _read_body(receive)
        except _TooLarge:
            await self._refuse(send, upstream, 413, "request_too_large", f"The request is larger than "
                               f"{MAX_REQUEST_BYTES // 2**20} MB.", "request_too_large")
            return None
        if body is None:
            return None  # the container hung up while sending; nothing to answer
        url = upstream.base_url + rest.decode("latin-1")
        if query := scope.get("query_string"):
            url += "?" + query.decode("latin-1")
        return grant, scope["method"], url, request_headers(headers, upstream.auth_header(key) if key else None), body

    async def _endpoint_allowed(self, upstream: Upstream, grant: Grant, method: str, path: bytes, send: Send) -> bool:
        """Whether the call is one a model client of this grant makes; a refusal is answered, logged and published."""
        refusal = endpoint_refusal(upstream.name, method, path)
        if refusal is None and upstream.name == "transcribe" and grant.upstream != "transcribe":
            refusal = 403, "only NanoClaw itself transcribes voice notes"
        elif refusal is None and grant.upstream not in (None, upstream.name):
            refusal = 403, f"this container's model service is {_API_NAMES[grant.upstream]}"
        if refusal is None:
            return True
        status, reason = refusal
        shown = (upstream.prefix + path[:200]).decode("latin-1")
        log.warning("model gateway: refused %s %r from session %s: %s", method, shown, grant.session_id, reason)
        self._events.publish("gateway.refused", reason="endpoint", provider=upstream.name, status=status,
                             method=method, path=shown, session_id=grant.session_id)
        kind, code = _REFUSAL_KINDS[status]
        await self._refuse(send, upstream, status, kind, f"NanoClaw's model gateway does not forward {method} "
                           f"{shown}: {reason}.", code)
        return False

    async def _key(self, upstream: Upstream, grant: Grant, send: Send) -> str | None:
        """The real key ('' when an OpenAI-compatible local server needs none); None when the call was refused.

        A server that needs no key (Ollama, a local server) is called without one when there is no usable secret
        store (no OS keyring, no passphrase): no key was given, so none can be kept, and asking for a store would
        block a setup that needs none. Should such a server want a key after all, its own refusal is passed on.
        """
        api = _API_NAMES[upstream.name]
        if not upstream.secret_name or (not upstream.key_required and not self._secrets.available):
            return ""
        try:
            key = await self._secrets.get(upstream.secret_name)
        except ConfigError as err:
            log.warning("model gateway: cannot read the %s key: %s", api, err)
            self._events.publish("gateway.refused", reason="secret_store", provider=upstream.name,
                                 session_id=grant.session_id)
            await self._refuse(send, upstream, 400, "invalid_request_error", f"NanoClaw cannot read your {api} API "
                               f"key: {err}", "secret_store_unavailable")
            return None
        if key:
            return key
        if not upstream.key_required:
            return ""
        log.warning("model gateway: refused a %s call of session %s: no %s API key is set up", upstream.name,
                    grant.session_id, api)
        self._events.publish("gateway.refused", reason="no_key", provider=upstream.name, session_id=grant.session_id)
        await self._refuse(send, upstream, 400, "invalid_request_error", f"No {api} API key is set up in NanoClaw. "
                           f"Open the NanoClaw app → Settings → Model access and add your {api} API key; the agent "
                           "can answer as soon as it is saved.", "missing_api_key")
        return None

    async def _forward(self, upstream: Upstream, grant: Grant, method: str, url: str,
                       headers: list[tuple[bytes, bytes]], body: bytes, receive: Receive, send: Send,
                       started: float) -> None:
        """Send the call upstream and stream the reply back chunk by chunk; then record its usage."""
        try:
            # A plain Request, not client.build_request: nothing of the client's (base URL, default headers, cookies)
            # belongs in a forwarded call, and skipping the merge is measurably cheaper per call.
            request = httpx.Request(method, url, headers=headers, content=body or None)
            response = await self._client.send(request, stream=True)
        except (httpx.HTTPError, httpx.InvalidURL) as err:
            await self._unreachable(upstream, grant, send, err)
            return
        except RuntimeError as err:  # "the client has been closed": stop() raced this call
            if not self.stopping:
                raise
            await self._unreachable(upstream, grant, send, err)
            return
        status = response.status_code
        content_type = response.headers.get("content-type", "")
        meter = meter_for(upstream.name, content_type) if status < 300 else None
        complete = False
        client_gone: asyncio.Future[Mapping[str, Any]] | None = None
        try:
            await send({"type": "http.response.start", "status": status,
                        "headers": response_headers(response.headers.raw)})
            if content_type.startswith("text/event-stream"):
                # A stream can run for minutes: learn of a container hanging up, so the generation is cut off too.
                client_gone = asyncio.ensure_future(receive())
            async for chunk in response.aiter_raw():
                if meter is not None:
                    meter.feed(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if client_gone is not None and client_gone.done():
                    log.info("model gateway: session %s hung up during a %s reply", grant.session_id, upstream.name)
                    break
            else:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                complete = True
        except httpx.HTTPError as err:
            # Headers are out: ending without the final chunk makes the container see a broken reply, not a short one.
            level = logging.INFO if self.stopping else logging.WARNING
            log.log(level, "model gateway: the %s reply from %s broke off: %s: %s", upstream.name, upstream.display,
                    type(err).__name__, err)
            self._events.publish("gateway.upstream_failed", provider=upstream.name, session_id=grant.session_id,
                                 error=type(err).__name__, during="response")
        except Exception:
            log.exception("model gateway: forwarding a %s reply to session %s failed", upstream.name, grant.session_id)
        finally:
            if client_gone is not None:
                client_gone.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await client_gone
            await response.aclose()
        try:
            usage = meter.result() if meter is not None else None
            if usage is None and isinstance(meter, OpenAIStreamMeter) and complete:
                self._warn_no_stream_usage(upstream)
            self._account(upstream, grant, status, usage, body, complete, started)
        except Exception:
            log.exception("model gateway: could not account a %s call of session %s", upstream.name,
                          grant.session_id)

    def _account(self, upstream: Upstream, grant: Grant, status: int, usage: Usage | None, body: bytes,
                 complete: bool, started: float) -> None:
        """Cost the call, count it toward today, queue its row and tell subscribers."""
        cost = 0.0
        if usage is not None:
            if not usage.model:
                usage = replace(usage, model=_model_in(body))
            cost = (audio_cost(usage.model, usage.audio_seconds, local=upstream.local) if upstream.name == "transcribe"
                    else self._prices.cost(usage, local=upstream.local))
            self._spend.add(cost)
            self._usage.add(usage_db.CallUsage(
                agent_group_id=grant.agent_group_id, session_id=grant.session_id, provider=upstream.name,
                model=usage.model, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                cache_read_tokens=usage.cache_read_tokens, cache_write_tokens=usage.cache_write_tokens,
                cost_usd=cost, created_at=now_iso(),
            ))
            if self._spend.first_notice_today():
                self._cap_reached(self._spend.message())
        self._events.publish(
            "gateway.call", provider=upstream.name, session_id=grant.session_id,
            agent_group_id=grant.agent_group_id, status=status, complete=complete,
            model=usage.model if usage else None, input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
            cache_read_tokens=usage.cache_read_tokens if usage else 0,
            cache_write_tokens=usage.cache_write_tokens if usage else 0, cost_usd=cost,
            audio_seconds=usage.audio_seconds if usage else 0.0,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )

    async def _unreachable(self, upstream: Upstream, grant: Grant, send: Send, err: Exception) -> None:
        api = _API_NAMES[upstream.name]
        if self.stopping:
            await self._refuse(send, upstream, 503, "api_error", "NanoClaw is shutting down; try again when it is "
                               "running.", "gateway_stopping")
            return
        log.warning("model gateway: cannot reach the %s upstream %s for session %s: %s: %s", upstream.name,
                    upstream.display, grant.session_id, type(err).__name__, err)
        self._events.publish("gateway.upstream_failed", provider=upstream.name, session_id=grant.session_id,
                             error=type(err).__name__, during="request")
        await self._refuse(send, upstream, 502, "api_error", f"NanoClaw's model gateway could not reach {api} at "
                           f"{upstream.display} ({type(err).__name__}). Check the internet connection, or the {api} "
                           "base URL in NanoClaw's settings.", "upstream_unreachable")

    def _warn_no_stream_usage(self, upstream: Upstream) -> None:
        if upstream.display in self._warned_no_stream_usage:
            return
        self._warned_no_stream_usage.add(upstream.display)
        log.warning("model gateway: %s sends no usage in streamed replies (stream_options.include_usage ignored); "
                    "those calls are not counted toward the spend cap", upstream.display)

    @staticmethod
    async def _refuse(send: Send, upstream: Upstream, status: int, kind: str, message: str, code: str) -> None:
        body = upstream.error(status, kind, message, code)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status < 500:
            headers.append((b"x-should-retry", b"false"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body (model requests are small next to the memory they are answered with)."""
    first = b""
    chunks: list[bytes] | None = None
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        part: bytes = message.get("body", b"")
        if part:
            size += len(part)
            if size > MAX_REQUEST_BYTES:
                raise _TooLarge
            if not first:
                first = part
            else:
                chunks = chunks or [first]
                chunks.append(part)
        if not message.get("more_body", False):
            return b"".join(chunks) if chunks else first


_FORM_MODEL = re.compile(rb'name="model"\r\n(?:[A-Za-z-]+:[^\r\n]*\r\n)*?\r\n([^\r\n]{1,200})\r\n')
"""The ``model`` field of a multipart form (a transcription upload), whose reply never names the model."""


def _model_in(body: bytes) -> str:
    """The requested model, for the rare reply that does not name it (and every transcription reply)."""
    if body[:2] == b"--":
        found = _FORM_MODEL.search(body[:65536])  # form fields come before the file
        return found.group(1).decode("utf-8", "replace") if found else "unknown"
    try:
        value = json.loads(body).get("model") if body else None
    except (ValueError, AttributeError):
        value = None
    return str(value) if value else "unknown"
