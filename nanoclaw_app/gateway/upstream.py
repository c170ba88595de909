"""The APIs the gateway forwards to, and what changes on the way: credentials and hop-by-hop headers.

Two model APIs for containers, and the server that transcribes voice notes for the host.

Everything here works on raw ASGI header lists (``list[tuple[bytes, bytes]]``, names lower-case) so the hot path never
decodes a header it does not need.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import urlsplit

import httpx

from nanoclaw_app.settings import Settings

Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"proxy-connection", b"te",
    b"trailer", b"trailers", b"transfer-encoding", b"upgrade",
})
"""RFC 9110 §7.6.1: meaningful for one connection only, never forwarded."""

_DROP_REQUEST = HOP_BY_HOP | {
    b"host", b"content-length",        # httpx sets both for the upstream request
    b"x-api-key", b"authorization",    # the container's gateway token; the real key is added instead
    b"accept-encoding",                # replaced by identity, see ``request_headers``
    b"cookie", b"expect",
}
_DROP_RESPONSE = HOP_BY_HOP | {
    b"server", b"date",                # uvicorn adds its own; two of each would confuse clients
    b"set-cookie",                     # the upstream's cookies are for its domain, not for the containers
}
_IDENTITY = (b"accept-encoding", b"identity")

ENDPOINTS: dict[str, dict[bytes, frozenset[str]]] = {
    "anthropic": {b"/v1/messages": frozenset({"POST"}), b"/v1/messages/count_tokens": frozenset({"POST"})},
    "openai": {b"/chat/completions": frozenset({"POST"}), b"/models": frozenset({"GET"})},
    "transcribe": {b"/audio/transcriptions": frozenset({"POST"})},
}
"""Per API, the paths (after the base URL, as sent: undecoded) and methods our model clients call: the Anthropic SDK
and the Claude CLI (``/v1/messages``, ``?beta=true`` is a query), the OpenAI SDK and the setup check (``/models``).
Anything else (files, batches that bypass metering, admin endpoints, a path that leaves the base URL) never gets the
key. The comparison is exact on the raw bytes, so no encoding or dot segment can turn into an allowed path."""
_UNSAFE_PATH = re.compile(rb"%|\\|//|(?:^|/)\.{1,2}(?:/|$)")
"""Percent-escapes, backslashes, empty and dot segments: only used to word the refusal of a path that is not listed."""


@dataclass(frozen=True, slots=True)
class Upstream:
    """One API the gateway forwards to: its mount name, base URL and how the real key is sent."""

    name: str
    """``anthropic``, ``openai`` or ``transcribe``: the URL prefix callers use and the API shape of errors and usage
    (``transcribe`` speaks OpenAI's)."""
    base_url: str
    """Without a trailing slash; the rest of the container's path is appended as is."""
    secret_name: str
    key_required: bool
    """Anthropic always needs a key; an OpenAI-compatible server only when it is OpenAI's own API."""
    local: bool
    """Runs on the user's own machines (loopback or private network): unknown models there cost nothing."""
    display: str
    """The base URL without credentials, for logs and messages."""

    @property
    def prefix(self) -> bytes:
        """The gateway path this upstream is mounted at (``/anthropic``)."""
        return b"/" + self.name.encode()

    def auth_header(self, key: str) -> tuple[bytes, bytes]:
        """The real key in this API's form."""
        if self.name == "anthropic":
            return (b"x-api-key", key.encode())
        return (b"authorization", b"Bearer " + key.encode())

    def error(self, status: int, kind: str, message: str, code: str) -> bytes:
        """A JSON error body in this API's own shape, so the SDKs parse it and show ``message``."""
        if self.name == "anthropic":
            body: dict[str, object] = {"type": "error", "error": {"type": kind, "message": message}}
        else:
            body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        return json.dumps(body).encode()


def endpoint_refusal(api: str, method: str, path: bytes) -> tuple[int, str] | None:
    """Why ``method path`` of ``api`` is not forwarded (HTTP status, reason), or None for an allowed endpoint."""
    methods = ENDPOINTS[api].get(path)
    if methods is None:
        if _UNSAFE_PATH.search(path):
            return 400, "paths with dot segments, empty segments or encoded characters are refused"
        return 404, "this endpoint is not one a model client needs"
    if method not in methods:
        return 405, f"this endpoint only takes {', '.join(sorted(methods))}"
    return None


def is_local_host(host: str) -> bool:
    """Whether a host name or address is on this machine or the private network (what Ollama & co. run on)."""
    host = host.strip("[]").lower()
    if host in ("localhost", "host.containers.internal", "host.docker.internal"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host or host.endswith((".local", ".lan", ".internal", ".home.arpa", ".localhost"))
    return address.is_loopback or address.is_private or address.is_link_local


def build_upstreams(settings: Settings) -> dict[str, Upstream]:
    """Both upstreams from settings, keyed by name."""
    result: dict[str, Upstream] = {}
    for name, base, secret in (("anthropic", settings.anthropic_base_url, "anthropic_api_key"),
                               ("openai", settings.openai_base_url, "openai_api_key")):
        parts = urlsplit(base.strip())
        host = parts.hostname or ""
        display = f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}".rstrip("/")
        result[name] = Upstream(
            name=name,
            base_url=base.strip().rstrip("/"),
            secret_name=secret,
            key_required=name == "anthropic" or host == "api.openai.com",
            local=is_local_host(host),
            display=display,
        )
    return result


def transcription_upstream(settings: Settings) -> Upstream:
    """The OpenAI-compatible server voice notes are transcribed by; only the host's own calls may use it.

    With ``transcription_key`` ``none`` (a local whisper.cpp server) no secret is read and no key is sent.
    """
    base = settings.transcription_base_url.strip()
    parts = urlsplit(base)
    host = parts.hostname or ""
    with_key = settings.transcription_key == "openai"
    return Upstream(
        name="transcribe",
        base_url=base.rstrip("/"),
        secret_name="openai_api_key" if with_key else "",
        key_required=with_key,
        local=is_local_host(host),
        display=f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}".rstrip("/"),
    )


def request_headers(incoming: Iterable[tuple[bytes, bytes]], auth: tuple[bytes, bytes] | None) -> Headers:
    """The container's headers minus its token, hop-by-hop and stale ones, plus the real key.

    ``accept-encoding: identity`` keeps the upstream's bytes readable for metering; compression between the gateway
    and a container on the same machine would buy nothing.
    """
    connection_named = _connection_tokens(incoming)
    headers = [(k, v) for k, v in incoming if k not in _DROP_REQUEST and k not in connection_named]
    headers.append(_IDENTITY)
    if auth is not None:
        headers.append(auth)
    return headers


def response_headers(raw: Iterable[tuple[bytes, bytes]]) -> Headers:
    """The upstream's response headers as ASGI wants them (lower-case), minus hop-by-hop and stale ones.

    ``content-length`` stays: the body is forwarded byte for byte, so it still holds.
    """
    pairs = [(k.lower(), v) for k, v in raw]
    connection_named = _connection_tokens(pairs)
    return [(k, v) for k, v in pairs if k not in _DROP_RESPONSE and k not in connection_named]


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Header names listed in ``Connection`` are hop-by-hop too (RFC 9110 §7.6.1)."""
    named: set[bytes] = set()
    for key, value in headers:
        if key == b"connection":
            named.update(token.strip().lower() for token in value.split(b","))
    return frozenset(named)


def new_client() -> httpx.AsyncClient:
    """One pooled client per gateway.

    Timeouts fit model calls: a non-streaming reply may take minutes before its first byte, so reads wait up to
    10 minutes (the SDKs' own default); connecting fails fast. Cookies are never stored, so nothing one container's
    call received is replayed on another's. The environment's proxy and CA settings (``HTTPS_PROXY``,
    ``SSL_CERT_FILE``) are honoured, as corporate networks need them.
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(connect=10.0, read=600.0, write=60.0, pool=30.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0),
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        follow_redirects=False,
    )
