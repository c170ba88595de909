"""One model call over HTTP, as the ``anthropic`` and ``openai`` providers make it.

A streamed POST, retried the way their SDKs retry, with every failure turned into a plain ``ModelCallError``.

Both providers send their requests with ``httpx2`` directly rather than through their SDKs: importing either SDK takes
about a second (hundreds of pydantic types), all of it on a fresh container's path to its first answer, and on this
path an SDK would only add a JSON body, an event-stream parser and retries. The two SDKs come from one generator and
retry alike, so the rules live here once.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx2

from agent_runner.providers.toolloop import ModelCallError, error_detail, http_error_message

T = TypeVar("T")

TIMEOUT = httpx2.Timeout(600.0, connect=5.0)
"""The SDKs' defaults: a long answer may take minutes, a connection may not."""
RETRY_STATUSES = frozenset({408, 409, 429})
"""Besides every 5xx: what both APIs document as worth retrying."""
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0
"""A server asking for a longer wait than this gets the usual backoff instead."""


def lost_gateway(error: BaseException) -> bool:
    """True when a call failed because the socket failed before any answer (not a timeout).

    Over a local unix socket there is no network in between: a refused or missing socket, or a connection dropped
    before the response, can only mean the gateway's process is gone.
    """
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, httpx2.TimeoutException):
            return False
        if isinstance(cause, httpx2.NetworkError | httpx2.RemoteProtocolError | ConnectionError | FileNotFoundError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


class IncompleteAnswer(Exception):
    """The event stream ended before the API's end marker; retried like a dropped connection."""


class _Retryable(Exception):
    """A failed call worth another try; ``delay`` is the server's ``retry-after``, if it gave a usable one."""

    def __init__(self, error: ModelCallError, delay: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay = delay


class ModelEndpoint:
    """One query's connection to one model API route; ``http`` may be the provider's shared gateway client."""

    def __init__(
        self,
        http: httpx2.AsyncClient,
        *,
        base_url: str,
        path: str,
        headers: Mapping[str, str],
        max_retries: int = 0,
        owns_http: bool = True,
        over_socket: bool = False,
    ) -> None:
        self.base_url = base_url
        self._http = http
        self._url = base_url.rstrip("/") + path
        self._headers = dict(headers)
        self._max_retries = max_retries
        self._owns_http = owns_http
        self._over_socket = over_socket
        """Calls go over the gateway's unix socket: a connection failure there means the host is gone."""

    async def aclose(self) -> None:
        """Close the HTTP client, unless it is the provider's shared gateway client."""
        if self._owns_http:
            await self._http.aclose()

    async def stream(self, body: dict[str, Any], read: Callable[[httpx2.Response], Awaitable[T]]) -> T:
        """POST ``body`` and ``read`` the streamed answer, retrying what is worth it.

        A retry repeats the whole call: a reader hands out its reply only once the stream is complete.
        """
        attempt = 0
        while True:
            try:
                return await self._call(body, read)
            except _Retryable as retry:
                if attempt >= self._max_retries:
                    raise retry.error from retry.__cause__
                await asyncio.sleep(retry.delay if retry.delay is not None else _backoff(attempt))
                attempt += 1

    async def _call(self, body: dict[str, Any], read: Callable[[httpx2.Response], Awaitable[T]]) -> T:
        try:
            async with self._http.stream("POST", self._url, json=body, headers=self._headers) as response:
                if response.status_code >= 400:
                    raise await _status_error(response)
                return await read(response)
        except IncompleteAnswer as exc:
            raise _Retryable(ModelCallError("The model service's answer broke off before it was complete.")) from exc
        except httpx2.TimeoutException as exc:
            raise _Retryable(ModelCallError("The model service did not answer in time.")) from exc
        except httpx2.TransportError as exc:
            error = ModelCallError(
                f"Could not reach the model service at {self.base_url}: {exc or type(exc).__name__}",
                gateway_lost=self._over_socket and lost_gateway(exc),
            )
            raise _Retryable(error) from exc
        except ValueError as exc:  # an event that is not the JSON the API documents
            raise ModelCallError(f"The model service sent something unexpected: {exc}") from exc


class EndpointClient:
    """Base of a ``toolloop.ModelClient`` that talks to its API through one ``ModelEndpoint``."""

    def __init__(self, endpoint: ModelEndpoint, *, model: str) -> None:
        self.model = model
        self._endpoint = endpoint

    async def aclose(self) -> None:
        """Release the endpoint's HTTP client."""
        await self._endpoint.aclose()


def _backoff(attempt: int) -> float:
    """The SDKs' exponential backoff, less up to a quarter at random so clients retrying together spread out."""
    delay: float = min(INITIAL_RETRY_DELAY * 2**attempt, MAX_RETRY_DELAY)
    return delay * (1 - 0.25 * random.random())  # noqa: S311 -- jitter, not a secret


async def _status_error(response: httpx2.Response) -> Exception:
    """The error for an HTTP error answer: ``_Retryable`` when the status (or ``x-should-retry``) says so."""
    raw = await response.aread()
    try:
        parsed: object = json.loads(raw)
    except ValueError:
        parsed = None
    fallback = raw.decode("utf-8", "replace").strip()[:500] or response.reason_phrase
    status = response.status_code
    error = ModelCallError(http_error_message(status, error_detail(parsed, fallback)))
    should = response.headers.get("x-should-retry")
    if should == "false" or (should != "true" and status not in RETRY_STATUSES and status < 500):
        return error
    return _Retryable(error, _retry_after(response.headers))


def _retry_after(headers: httpx2.Headers) -> float | None:
    """The wait the server asked for (``retry-after-ms`` first, then ``retry-after`` in seconds), if usable."""
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            delay = float(headers.get(name, "")) / divisor
        except ValueError:
            continue
        return delay if 0 < delay <= MAX_RETRY_AFTER else None
    return None


async def sse_data(response: httpx2.Response) -> AsyncIterator[str]:
    """The ``data`` of each server-sent event, its lines joined.

    ``event:`` and ``id:`` lines, comments and keep-alives carry nothing either API needs.
    """
    data: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif not line and data:
            yield "\n".join(data)
            data = []
