"""Credentials for the agents' other services: add, edit, remove, list and test them; the value goes one way only.

A value goes into the secret store (as ``credential:<id>``) and is never returned by anything here: views say only
whether it is set. Each change publishes ``credentials.changed``, so the egress proxy's policy reloads what it cached.
The "Test" request applies the credential exactly as the proxy does (:func:`policy.inject`), to the credential's own
host only, without following redirects (a redirect could carry it to another host).
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Literal, cast
from urllib.parse import urlsplit

from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import credentials as credentials_db
from nanoclaw_app.db.credentials import Credential, secret_name
from nanoclaw_app.egress import policy
from nanoclaw_app.egress.policy import INJECTION_KINDS, Injection, InjectionKind
from nanoclaw_app.errors import ConfigError, NotFound, UserError
from nanoclaw_app.secrets.backend import PASSPHRASE_ENV, encrypted_store_exists
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.settings import Settings
from nanoclaw_app.text_safety import clean_text

log = logging.getLogger(__name__)

POLICIES = ("allow", "ask", "ask_once")
POLICY_WORDS = {"allow": "Use freely", "ask": "Ask each time", "ask_once": "Ask once per conversation"}
MAX_NAME = 80
MAX_VALUE_CHARS = 16 * 1024
TEST_TIMEOUT_SECONDS = 10.0
EVENT = "credentials.changed"

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
"""An HTTP header name (RFC 9110 token)."""
_PARAM = re.compile(r"^[A-Za-z0-9_.~\[\]-]{1,100}$")
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
                      "trailer", "proxy-authorization", "proxy-connection", "expect"})
"""Headers that say how a request is carried, not who sends it: a credential there would break the request."""
_HEADER_VALUE = re.compile(r"^[\x20-\x7e\x80-\xff]+$")
"""Printable Latin-1 without control characters: a CR or LF would start another header."""


@dataclass
class CredentialInput:
    """What a person fills in (everything but the value, which travels beside it)."""

    name: str
    host_pattern: str
    kind: str = "bearer"
    field: str = ""
    """The header name (``header``) or query parameter (``query``); ignored for ``bearer`` and ``basic``."""
    agents: str | list[str] = "all"
    """``"all"``, or the agent ids that may use it."""
    policy: str = "allow"
    test_url: str = ""


@dataclass
class AgentName:
    """An agent a credential names."""

    id: str
    name: str


@dataclass
class CredentialView:
    """A credential as the page and the CLI show it: never its value."""

    id: str
    name: str
    host_pattern: str
    kind: str
    field: str
    how: str
    """How it is added, in words ("Bearer token", "Header X-Api-Key")."""
    all_agents: bool
    agents: list[AgentName]
    policy: str
    policy_words: str
    test_url: str
    secret: Literal["set", "missing", "locked"]
    """Whether the secret store holds its value (``locked``: the store cannot be read now)."""
    created_at: str
    updated_at: str


@dataclass
class TestResult:
    """What the service answered to the test request, in words."""

    ok: bool
    message: str
    url: str
    status_code: int | None = None


@dataclass
class StoreState:
    """Whether credentials can be saved now, and if not, what fixes it."""

    ready: bool
    problem: str = ""
    fix: Literal["", "unlock", "setup"] = ""


@dataclass
class CredentialList:
    """The page's data: the credentials, the agents they may name, and whether values can be saved."""

    credentials: list[CredentialView] = field(default_factory=list)
    agents: list[AgentName] = field(default_factory=list)
    store: StoreState = field(default_factory=lambda: StoreState(ready=True))


# --------------------------------------------------------------------------------------------- reading


def how_words(kind: str, field_name: str) -> str:
    """How a credential is added, in words."""
    return {
        "bearer": "Bearer token",
        "basic": "User name and password (basic)",
        "header": f"Header {field_name}",
        "query": f"Query parameter {field_name}",
    }.get(kind, kind)


async def _view(services: AppServices, credential: Credential, names: dict[str, str]) -> CredentialView:
    store = services.secrets
    held: Literal["set", "missing", "locked"] = "locked"
    if store.available:
        held = "set" if await store.get(secret_name(credential.id)) is not None else "missing"
    agents = credential.agents
    return CredentialView(
        id=credential.id, name=credential.name, host_pattern=credential.host_pattern, kind=credential.kind,
        field=credential.field, how=how_words(credential.kind, credential.field), all_agents=agents == "all",
        agents=[] if agents == "all" else [AgentName(a, names[a]) for a in agents if a in names],
        policy=credential.policy, policy_words=POLICY_WORDS.get(credential.policy, credential.policy),
        test_url=credential.test_url, secret=held, created_at=credential.created_at,
        updated_at=credential.updated_at,
    )


async def _agent_names(services: AppServices) -> dict[str, str]:
    return {a.id: a.name for a in await agents_db.list_all(services.ctx.db)}


async def list_credentials(services: AppServices) -> list[CredentialView]:
    """Every credential by name, with whether its value is set."""
    names = await _agent_names(services)
    return [await _view(services, c, names) for c in await credentials_db.list_all(services.ctx.db)]


async def page_data(services: AppServices) -> CredentialList:
    """What the Credentials page shows."""
    names = await _agent_names(services)
    return CredentialList(credentials=await list_credentials(services),
                          agents=[AgentName(i, n) for i, n in names.items()], store=await store_state(services))


async def store_state(services: AppServices) -> StoreState:
    """Ready, or the sentence that says how to make the secret store usable."""
    if services.secrets.available:
        return StoreState(ready=True)
    if await asyncio.to_thread(encrypted_store_exists, services.settings.paths):
        return StoreState(ready=False, fix="unlock", problem=(
            "Credentials are kept in your secret store, which is locked: unlock it with your passphrase (in the app, "
            f"or with {PASSPHRASE_ENV} for a command), then try again."))
    return StoreState(ready=False, fix="setup", problem=(
        "Credentials are kept in your secret store, and none is set up yet: choose where NanoClaw keeps keys in "
        "Settings, then try again."))


async def _require_store(services: AppServices) -> None:
    state = await store_state(services)
    if not state.ready:
        raise ConfigError(state.problem)


async def find(services: AppServices, ref: str) -> Credential:
    """A credential by id or name (any case)."""
    ref = ref.strip()
    db = services.ctx.db
    found = await credentials_db.get(db, ref) or await credentials_db.get_by_name(db, ref)
    if found is None:
        raise NotFound(f"there is no credential {ref!r}; the Credentials page (or `nanoclaw credentials list`) "
                       "shows them")
    return found


async def get_credential(services: AppServices, ref: str) -> CredentialView:
    """One credential's view."""
    return await _view(services, await find(services, ref), await _agent_names(services))


# --------------------------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class _Checked:
    name: str
    host_pattern: str
    kind: str
    field: str
    agents: str | tuple[str, ...]
    policy: str
    test_url: str


async def _check(services: AppServices, spec: CredentialInput, *, editing: str | None = None) -> _Checked:
    name = clean_text(spec.name or "").strip()
    if not name:
        raise UserError("give the credential a name, like GitHub")
    if len(name) > MAX_NAME:
        raise UserError(f"the name is longer than {MAX_NAME} characters")
    same = await credentials_db.get_by_name(services.ctx.db, name)
    if same is not None and same.id != editing:
        raise UserError(f"a credential called {same.name!r} exists already; choose another name or edit that one")
    try:
        pattern = policy.check_host_pattern(spec.host_pattern or "")
    except ValueError as err:
        raise UserError(str(err)) from err
    if spec.kind not in INJECTION_KINDS:
        raise UserError("choose how it is added: a bearer token, a user name and password, a header, or a query "
                        "parameter")
    field_name = (spec.field or "").strip() if spec.kind in ("header", "query") else ""
    if spec.kind == "header":
        if not _TOKEN.match(field_name):
            raise UserError("name the header it goes in, like X-Api-Key (letters, digits and - only)")
        if field_name.lower() in _FRAMING:
            raise UserError(f"{field_name} says how a request is carried; a credential cannot go there")
    if spec.kind == "query" and not _PARAM.match(field_name):
        raise UserError("name the query parameter it goes in, like api_key (letters, digits, _ . - only)")
    if spec.policy not in POLICIES:
        raise UserError("choose when it may be used: freely, ask each time, or ask once per conversation")
    return _Checked(name=name, host_pattern=pattern, kind=spec.kind, field=field_name,
                    agents=await _check_agents(services, spec.agents), policy=spec.policy,
                    test_url=check_test_url(spec.test_url, pattern))


async def _check_agents(services: AppServices, agents: str | Sequence[str]) -> str | tuple[str, ...]:
    if agents == "all":
        return "all"
    if isinstance(agents, str):
        raise UserError('say which agents may use it: "all", or a list of agents')
    known = await _agent_names(services)
    chosen = tuple(dict.fromkeys(a.strip() for a in agents))
    if not chosen:
        raise UserError("choose at least one agent that may use it, or all agents")
    missing = [a for a in chosen if a not in known]
    if missing:
        raise NotFound(f"no agent {missing[0]!r}; it may have been deleted")
    return chosen


def check_test_url(url: str, pattern: str) -> str:
    """An https address on a host the pattern covers (where the Test request goes), or ``""``."""
    url = (url or "").strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise UserError("the test address must start with https:// (a credential is only sent encrypted)")
    if parts.username or parts.password or parts.fragment:
        raise UserError("the test address must be a plain https:// address, without a user name or #part")
    try:
        port = parts.port or 443
    except ValueError as err:
        raise UserError("the test address has a port that does not exist") from err
    if not policy.host_matches(pattern, parts.hostname, port):
        raise UserError(f"the test address must be on {pattern}, where the credential is sent")
    return url


def check_value(kind: str, value: str) -> str:
    """The value ready to store, or a ``UserError`` saying what is wrong with it (never repeating it)."""
    value = (value or "").strip()
    if not value:
        raise UserError("paste the value: the token, key or user:password")
    if len(value) > MAX_VALUE_CHARS:
        raise UserError(f"the value is longer than {MAX_VALUE_CHARS} characters; is it the right text?")
    if kind == "basic":
        if ":" not in value or "\n" in value or "\r" in value:
            raise UserError("for a user name and password, write them as user:password")
    elif kind != "query" and not _HEADER_VALUE.match(value):
        raise UserError("the value holds a line break or another character a request header cannot carry; "
                        "paste only the token")
    return value


# --------------------------------------------------------------------------------------------- changing


def _changed(services: AppServices, credential_id: str, action: str) -> None:
    services.ctx.events.publish(EVENT, id=credential_id, action=action)


async def add(services: AppServices, spec: CredentialInput, value: str) -> CredentialView:
    """Add a credential and keep its value in the secret store."""
    checked = await _check(services, spec)
    value = check_value(checked.kind, value)
    await _require_store(services)
    try:
        created = await credentials_db.create(
            services.ctx.db, name=checked.name, host_pattern=checked.host_pattern, kind=checked.kind,
            field=checked.field, agents=checked.agents, policy=checked.policy, test_url=checked.test_url)
    except sqlite3.IntegrityError as err:
        raise UserError(f"a credential called {checked.name!r} exists already; choose another name") from err
    try:
        await services.secrets.set(secret_name(created.id), value)
    except BaseException:
        await credentials_db.delete(services.ctx.db, created.id)
        raise
    log.info("credential %s (%s) added for %s", created.id, created.name, created.host_pattern)
    _changed(services, created.id, "added")
    return await get_credential(services, created.id)


async def edit(services: AppServices, ref: str, spec: CredentialInput, value: str = "") -> CredentialView:
    """Change a credential; an empty ``value`` keeps the stored one."""
    current = await find(services, ref)
    checked = await _check(services, spec, editing=current.id)
    new_value = check_value(checked.kind, value) if (value or "").strip() else ""
    if new_value:
        await _require_store(services)
    elif checked.kind != current.kind and (checked.kind == "basic" or current.kind == "basic"):
        raise UserError("a user name and password is stored differently from a token: paste the value again")
    try:
        await credentials_db.update(
            services.ctx.db, current.id, name=checked.name, host_pattern=checked.host_pattern, kind=checked.kind,
            field=checked.field, agents=checked.agents, policy=checked.policy, test_url=checked.test_url)
    except sqlite3.IntegrityError as err:
        raise UserError(f"a credential called {checked.name!r} exists already; choose another name") from err
    if new_value:
        await services.secrets.set(secret_name(current.id), new_value)
    log.info("credential %s (%s) changed%s", current.id, checked.name, " with a new value" if new_value else "")
    _changed(services, current.id, "edited")
    return await get_credential(services, current.id)


async def remove(services: AppServices, ref: str) -> None:
    """Remove a credential and its value (the store must be open, so no value is left behind)."""
    current = await find(services, ref)
    state = await store_state(services)
    if state.fix == "unlock":
        raise ConfigError(state.problem)
    if state.ready:
        await services.secrets.delete(secret_name(current.id))
    await credentials_db.delete(services.ctx.db, current.id)
    log.info("credential %s (%s) removed", current.id, current.name)
    _changed(services, current.id, "removed")


# --------------------------------------------------------------------------------------------- testing


def trust(ca_files: Sequence[str]) -> ssl.SSLContext:
    """The public CAs (as httpx trusts them) plus the PEM files named, for the Test request and the proxy alike."""
    import httpx

    context = httpx.create_ssl_context()
    for file in ca_files:
        if not file:
            continue
        try:
            context.load_verify_locations(cafile=file)
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"cannot read the CA certificates file {file}: {err}. Fix the path in Settings.") from err
    return context


def settings_ca_files(settings: Settings) -> list[str]:
    """The extra CA files the host trusts for sites that have a credential."""
    return [settings.agent_ca_certificates, getattr(settings, "egress_trusted_ca_file", "")]


def address_to_test(credential: Credential) -> str:
    """Where the Test request goes: the test address, else the root of the host."""
    if credential.test_url:
        return credential.test_url
    if credential.host_pattern.startswith("*."):
        raise UserError(f"{credential.host_pattern} names no single host: edit the credential and add a test "
                        f"address, like https://api.{credential.host_pattern[2:]}/")
    host, _, port = credential.host_pattern.partition(":")
    return f"https://{host}{':' + port if port and port != '443' else ''}/"


async def run_test(services: AppServices, ref: str, *, ca_files: Sequence[str] | None = None) -> TestResult:
    """Send one GET with the credential to its service and say in words what came back.

    ``ca_files``: extra CAs to trust (default: the settings' ``agent_ca_certificates`` and
    ``egress_trusted_ca_file``, as the proxy does).
    """
    import httpx

    credential = await find(services, ref)
    url = address_to_test(credential)
    await _require_store(services)
    value = await services.secrets.get(secret_name(credential.id))
    if value is None:
        raise UserError(f"the value of {credential.name} is missing: edit it and paste the value again")
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    injection = Injection(kind=cast(InjectionKind, credential.kind), field=credential.field, value=value)
    headers, new_target = policy.inject([(b"User-Agent", b"NanoClaw credential test")], target.encode("latin-1"),
                                        injection)
    where = f"{parts.scheme}://{parts.netloc}"
    context = trust(settings_ca_files(services.settings) if ca_files is None else ca_files)
    try:
        async with httpx.AsyncClient(verify=context, timeout=TEST_TIMEOUT_SECONDS, follow_redirects=False) as client:
            response = await client.get(where + new_target.decode("latin-1"), headers=headers)
    except httpx.TimeoutException:
        return TestResult(False, f"could not reach {parts.hostname}: no answer within {TEST_TIMEOUT_SECONDS:g} "
                          "seconds", url)
    except httpx.HTTPError as err:
        return TestResult(False, f"could not reach {parts.hostname}: {_reach_words(err)}", url)
    return TestResult(response.is_success, _answer_words(credential.name, response.status_code), url,
                      response.status_code)


def _reach_words(err: Exception) -> str:
    text = str(err) or type(err).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return ("its certificate is not one this computer trusts (a network's own? add its CA file in Settings)")
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "no such host name (check the spelling, and this computer's internet connection)"
    if "Connection refused" in text or "Errno 111" in text:
        return "nothing answers there (connection refused)"
    return text


def _answer_words(name: str, code: int) -> str:
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = ""
    said = f"{name} answered {code} {phrase}".rstrip()
    if 200 <= code < 300:
        return f"{said}: the credential works"
    if code in (401, 403):
        return f"{said}: the service refused this credential (check the value, and how it is added)"
    if 300 <= code < 400:
        return (f"{said}: it sends the request elsewhere, so the credential was not checked; set a test address "
                "that answers directly")
    if code == 404:
        return (f"{said}: there is nothing at the test address, so the credential was not checked; set a test "
                "address of its API (for example the one that shows your account)")
    if code >= 500:
        return f"{said}: the service has a problem right now; try again later"
    return f"{said}: the service did not accept the request, so the credential was not checked"
