"""What the egress proxy asks the rest of the app, and the shapes of the answers.

The proxy (``egress/proxy.py``) knows HTTP, TLS and addresses; it knows no database, secret store or approval card.
Everything it must decide per connection or per request it asks an ``EgressPolicy``, and everything worth keeping it
hands to ``EgressPolicy.record``. Host patterns and the injection of a credential into a request are pure functions
here, so the proxy, the Credentials page's "Test" button and the tests apply a credential the same way.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import parse_qsl, quote, urlencode

InjectionKind = Literal["bearer", "basic", "header", "query"]
INJECTION_KINDS: tuple[InjectionKind, ...] = ("bearer", "basic", "header", "query")
Decision = Literal["allowed", "approved", "denied", "expired", "refused"]


@dataclass(frozen=True, slots=True)
class Caller:
    """The container asking: known from the listener its connection arrived on, never from what it sends."""

    session_id: str
    agent_group_id: str


@dataclass(frozen=True, slots=True)
class Injection:
    """How one credential is added to a request; ``value`` is the secret (``user:password`` for basic)."""

    kind: InjectionKind
    field: str
    """The header name (``header``) or query parameter (``query``); empty for ``bearer`` and ``basic``."""
    value: str = dataclasses.field(repr=False)


@dataclass(frozen=True, slots=True)
class ConnectPlan:
    """The answer to a ``CONNECT host:port`` (or an ``http://`` request): refuse, tunnel, or terminate TLS."""

    refused: str = ""
    """Why the connection is refused, in words the agent can act on; empty when it may go ahead."""
    intercept: bool = False
    """Terminate TLS so a credential can be added (some credential's pattern matches host:port)."""


@dataclass(frozen=True, slots=True)
class RequestVerdict:
    """The answer for one request inside an intercepted connection."""

    injection: Injection | None = None
    """What to add; None forwards the request untouched (no credential of this agent applies)."""
    refused: str = ""
    """Answer 403 with this reason instead of forwarding (denied, expired, or the secret store is locked)."""
    decision: Decision = "allowed"
    credential_id: str | None = None
    credential_name: str = ""
    approved_by: str | None = None
    """The user who allowed or denied it, when somebody was asked."""


@dataclass(frozen=True, slots=True)
class EgressRecord:
    """One line of the activity: a credentialed request (``request``) or a connection (``connect``)."""

    caller: Caller
    kind: Literal["request", "connect"]
    host: str
    port: int
    decision: Decision
    method: str = ""
    path: str = ""
    """The path without its query string (a query parameter may be the credential)."""
    credential_id: str | None = None
    credential_name: str = ""
    approved_by: str | None = None
    status_code: int | None = None
    reason: str = ""


class EgressPolicy(Protocol):
    """The app's side of the proxy."""

    async def plan_connect(self, caller: Caller, host: str, port: int) -> ConnectPlan:
        """May this agent connect to host:port (its "only these sites" list), and does a credential apply?

        Called after the proxy's own home-network check, which no policy can lift.
        """
        ...

    async def authorize(self, caller: Caller, method: str, host: str, port: int, path: str) -> RequestVerdict:
        """Which credential to add to this request, after asking a person if its policy says so (may wait)."""
        ...

    def record(self, record: EgressRecord) -> None:
        """Keep one line of activity; must not block or raise (the proxy calls it on every connection)."""
        ...


# --------------------------------------------------------------------------------------------- host patterns

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def check_host_pattern(pattern: str) -> str:
    """The pattern normalised (lower case, no scheme or path), or ``ValueError`` saying what is wrong.

    ``api.github.com`` (port 443), ``*.github.com`` (its subdomains, not itself), ``127.0.0.1:8443``.
    """
    text = pattern.strip().lower()
    for scheme in ("https://", "http://"):
        if text.startswith(scheme):
            text = text[len(scheme):]
    text = text.rstrip("/")
    if not text or "/" in text or "?" in text or "@" in text or " " in text:
        raise ValueError(f"{pattern!r} is not a host name: write it like api.github.com or *.example.com")
    host, port = _split_port(text)
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"{pattern!r} has a port that does not exist")
    bare = host[2:] if host.startswith("*.") else host
    labels = bare.split(".")
    if "*" in bare or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"{pattern!r} is not a host name: write it like api.github.com or *.example.com")
    if host.startswith("*.") and len(labels) < 2:
        raise ValueError(f"{pattern!r} would match too much: name at least a domain, like *.example.com")
    return text


def host_matches(pattern: str, host: str, port: int) -> bool:
    """Whether a normalised pattern covers host:port; a pattern without a port means 443."""
    want_host, want_port = _split_port(pattern)
    if port != (want_port or 443):
        return False
    host = host.lower().rstrip(".")
    if want_host.startswith("*."):
        return host.endswith(want_host[1:])
    return host == want_host


def _split_port(text: str) -> tuple[str, int | None]:
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        if not port.isdigit():
            raise ValueError(f"{text!r} has a port that is not a number")
        return host, int(port)
    return text, None


# --------------------------------------------------------------------------------------------- injection

Headers = list[tuple[bytes, bytes]]


def inject(headers: Headers, target: bytes, injection: Injection) -> tuple[Headers, bytes]:
    """The request's headers and target with the credential in place.

    The credential *replaces* any value of the same name the agent sent (a placeholder it was told to use), so the
    agent can never choose what the service sees under the credential's name.
    """
    if injection.kind == "query":
        return headers, _with_query(target, injection.field, injection.value)
    if injection.kind == "header":
        name, value = injection.field.encode("latin-1"), injection.value.encode("latin-1")
    else:
        name = b"Authorization"
        if injection.kind == "bearer":
            value = b"Bearer " + injection.value.encode("latin-1")
        else:
            value = b"Basic " + base64.b64encode(injection.value.encode("utf-8"))
    lowered = name.lower()
    kept = [(key, val) for key, val in headers if key.lower() != lowered]
    kept.append((name, value))
    return kept, target


def _with_query(target: bytes, name: str, value: str) -> bytes:
    path, _, query = target.decode("latin-1").partition("?")
    pairs = [(key, val) for key, val in parse_qsl(query, keep_blank_values=True) if key != name]
    pairs.append((name, value))
    return (path + "?" + urlencode(pairs, quote_via=quote)).encode("latin-1")


def path_only(target: str) -> str:
    """A request target without its query string, for logs and cards (the query may hold the credential)."""
    return target.partition("?")[0] or "/"


def check_site(site: str) -> str:
    """A site for an agent's "only these sites" list, normalised (``github.com``), or ``ValueError`` saying why."""
    text = site.strip().lower()
    for prefix in ("https://", "http://", "*."):
        if text.startswith(prefix):
            text = text[len(prefix):]
    text = text.split("/", 1)[0].rstrip(".")
    labels = text.split(".")
    if not text or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"{site!r} is not a site: write a domain like github.com")
    return text


def site_allows(sites: list[str] | tuple[str, ...], host: str) -> bool:
    """Whether a list of normalised sites lets a host through: a site covers itself and its subdomains."""
    host = host.lower().rstrip(".")
    return any(host == site or host.endswith("." + site) for site in sites)
