"""Model access for the setup wizard: check what the user typed, then make one real, tiny call through the gateway.

The call goes through the host's own model gateway (a short-lived token, like a container's), so a pass proves the
whole path an agent will use: the key in the secret store, the upstream URL in settings, the network. Every failure is
turned into plain words with the fix, and names the form field it is about so the page can show it there.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from nanoclaw_app.errors import ConfigError, UserError
from nanoclaw_app.gateway.server import UNIX_ORIGIN, ModelGateway

log = logging.getLogger(__name__)

Kind = Literal["anthropic", "openai_compatible"]
Field = Literal["kind", "api_key", "base_url", "model", ""]

KINDS: tuple[str, ...] = ("anthropic", "openai_compatible")
PROVIDER_OF_KIND = {"anthropic": "claude", "openai_compatible": "openai"}
"""The agent provider each choice runs with: Claude's own agent (the default) or our loop for OpenAI-style APIs."""
SECRET_OF_KIND = {"anthropic": "anthropic_api_key", "openai_compatible": "openai_api_key"}
LABEL_OF_KIND = {"anthropic": "Anthropic API key", "openai_compatible": "OpenAI-compatible API key"}
DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-4-6"
"""Pre-filled in the form; the same default the runner's anthropic provider uses."""
ANTHROPIC_VERSION = "2023-06-01"
CHECK_TIMEOUT = 45.0
"""Longer than the gateway's 10 s connect timeout, so an unreachable upstream is reported by the gateway in words."""
_MAX_KEY = 400
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@\[\]+-]{0,127}$")
"""What an agent's model setting accepts (``services/agents``), so a name that passes here is kept there too."""


class StepFailed(UserError):
    """A wizard step did not pass: the message says what happened and what to do; ``field`` is the form field."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """What the user chose, cleaned up: the kind, the model, and the base URL (OpenAI-compatible only)."""

    kind: str
    model: str
    base_url: str
    """Empty for Anthropic (the gateway's configured Anthropic URL is used)."""

    @property
    def provider(self) -> str:
        """The agent provider this choice runs with."""
        return PROVIDER_OF_KIND[self.kind]

    @property
    def secret_name(self) -> str:
        """The secret-store entry of this kind's key."""
        return SECRET_OF_KIND[self.kind]


# ---------------------------------------------------------------------------------------------------- input checks


def clean_choice(kind: str, base_url: str, model: str) -> ModelChoice:
    """Validate the kind, URL and model name (not the key: see :func:`clean_key`)."""
    if kind not in KINDS:
        raise StepFailed("Choose how NanoClaw reaches a model: Anthropic, or an OpenAI-compatible server.", "kind")
    model = model.strip()
    if kind == "anthropic":
        model = model or DEFAULT_ANTHROPIC_MODEL
        url = ""
    else:
        url = clean_base_url(base_url)
        if not model:
            raise StepFailed("Enter the model's name, as the server calls it (for Ollama, one that `ollama list` "
                             "shows, such as llama3.2).", "model")
    if not _MODEL.match(model):
        raise StepFailed("A model name is letters, digits and . _ - : / @ without spaces, like claude-sonnet-4-6 or "
                         "llama3.2. Check what you typed.", "model")
    return ModelChoice(kind=kind, model=model, base_url=url)


def clean_base_url(raw: str) -> str:
    """An http(s) base URL without credentials, query or trailing slash; a bare server address gets ``/v1``."""
    text = raw.strip()
    if not text:
        raise StepFailed("Enter the server's address, for example http://localhost:11434/v1 for Ollama on this "
                         "computer.", "base_url")
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as err:
        raise StepFailed(f"That address is not a valid URL ({err}). Write it like http://localhost:11434/v1.",
                         "base_url") from err
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in text):
        raise StepFailed("The address must start with http:// or https:// and name a server, like "
                         "http://localhost:11434/v1.", "base_url")
    if parts.username or parts.password:
        raise StepFailed("Leave the user name and password out of the address; put the key in the API key field.",
                         "base_url")
    if parts.query or parts.fragment:
        raise StepFailed("The address should end at the API path (like …/v1), without ? or #.", "base_url")
    path = parts.path.rstrip("/") or "/v1"  # Ollama, LM Studio and vLLM all serve the OpenAI API under /v1
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{path}"


def clean_key(kind: str, raw: str) -> str:
    """The key without surrounding blanks; refuses what is certainly not a usable key, saying why."""
    key = raw.strip()
    if not key:
        return ""
    if any(c.isspace() for c in key) or not key.isascii() or not key.isprintable():
        raise StepFailed("The key has spaces or unusual characters in it. Copy it again in one piece.", "api_key")
    if len(key) > _MAX_KEY:
        raise StepFailed("That is much longer than an API key. Copy only the key itself.", "api_key")
    if kind == "anthropic":
        if key.startswith("sk-ant-oat"):
            raise StepFailed("This is a Claude subscription login token, not an API key. Anthropic does not allow "
                             "apps like NanoClaw to use subscription logins. Create an API key at "
                             "console.anthropic.com → API Keys and paste that instead.", "api_key")
        if not key.startswith("sk-ant-"):
            hint = " That looks like an OpenAI key: choose “OpenAI-compatible” for it." if key.startswith("sk-") else ""
            raise StepFailed("Anthropic API keys start with sk-ant-. Copy the key from console.anthropic.com → "
                             f"API Keys.{hint}", "api_key")
        if len(key) < 30:
            raise StepFailed("That key is too short; it may have been cut off. Copy the whole key again.", "api_key")
    return key


def key_required(choice: ModelChoice) -> bool:
    """Anthropic always needs a key; an OpenAI-compatible server only when it is OpenAI's own API."""
    return choice.kind == "anthropic" or urlsplit(choice.base_url).hostname == "api.openai.com"


def same_server(a: str, b: str) -> bool:
    """Whether two base URLs point at the same server (a saved key may only go to the server it was saved for)."""
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


# ---------------------------------------------------------------------------------------------------- the real call


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A passed check: what answered, for the page to show."""

    message: str
    models: tuple[str, ...] = ()
    """Models the OpenAI-compatible server lists (empty for Anthropic)."""


def _client(gateway: ModelGateway) -> httpx.AsyncClient:
    """A client that reaches the gateway the way a runner does: its unix socket, or loopback TCP."""
    timeout = httpx.Timeout(CHECK_TIMEOUT, connect=5.0)
    if gateway.transport == "unix":
        if gateway.socket_path is None:
            raise ConfigError("the model gateway has no socket; restart NanoClaw")
        return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(gateway.socket_path)),
                                 base_url=UNIX_ORIGIN, timeout=timeout)
    if gateway.port is None:
        raise ConfigError("the model gateway is not running yet; wait a moment, or restart NanoClaw")
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=timeout)


async def probe_model(gateway: ModelGateway | None, choice: ModelChoice, upstream_display: str) -> CheckResult:
    """One minimal real request through the gateway with a token of its own, revoked afterwards."""
    if gateway is None:
        raise ConfigError("the model gateway does not run in this process; run the setup in the NanoClaw app")
    session_id = f"setup-check-{secrets.token_hex(6)}"
    token = gateway.grant(session_id, "")
    try:
        async with _client(gateway) as client:
            if choice.kind == "anthropic":
                return await _anthropic(client, token, choice, upstream_display)
            return await _openai(client, token, choice, upstream_display)
    except httpx.TimeoutException as err:
        raise StepFailed(f"No answer from {upstream_display} within {CHECK_TIMEOUT:.0f} seconds. The server may be "
                         "overloaded or unreachable; check the address and try again.",
                         "base_url" if choice.kind != "anthropic" else "") from err
    except httpx.HTTPError as err:
        log.error("setup: the model gateway did not answer the test call: %s", err)
        raise StepFailed("NanoClaw's own model gateway did not answer. Restart NanoClaw and try again; the log has "
                         f"details ({type(err).__name__}).") from err
    finally:
        gateway.revoke(session_id)


async def _anthropic(client: httpx.AsyncClient, token: str, choice: ModelChoice, where: str) -> CheckResult:
    body = {"model": choice.model, "max_tokens": 1, "messages": [{"role": "user", "content": "Hi"}]}
    response = await client.post("/anthropic/v1/messages", json=body,
                                 headers={"x-api-key": token, "anthropic-version": ANTHROPIC_VERSION})
    if response.status_code == 200 and _json(response).get("type") == "message":
        return CheckResult(f"Anthropic answered with {choice.model}: the key works.")
    if response.status_code == 200:
        raise StepFailed(f"{where} answered, but not like the Anthropic API. Check the Anthropic address in "
                         "Settings (normally https://api.anthropic.com).")
    raise explain(response, choice, where)


async def _openai(client: httpx.AsyncClient, token: str, choice: ModelChoice, where: str) -> CheckResult:
    headers = {"authorization": f"Bearer {token}"}
    response = await client.get("/openai/models", headers=headers)
    if response.status_code == 200:
        models = _model_ids(_json(response))
        if models is None:
            raise StepFailed(f"{where} answered, but not like an OpenAI-compatible API. Check the address: it "
                             "usually ends in /v1.", "base_url")
        if models and not _offers(models, choice.model):
            shown = ", ".join(models[:12]) + (" …" if len(models) > 12 else "")
            raise StepFailed(f"The server does not have the model “{choice.model}”. It has: {shown}. Pick one of "
                             f"those, or for Ollama run `ollama pull {choice.model}` first.", "model")
        return CheckResult(f"The server at {where} answered and has {choice.model}.", tuple(models))
    if response.status_code not in (404, 405):
        raise explain(response, choice, where)
    # Some servers have no model list: a one-token reply proves the same.
    body = {"model": choice.model, "max_tokens": 1, "messages": [{"role": "user", "content": "Hi"}]}
    response = await client.post("/openai/chat/completions", json=body, headers=headers)
    if response.status_code == 200 and "choices" in _json(response):
        return CheckResult(f"The server at {where} answered with {choice.model}.")
    if response.status_code == 200:
        raise StepFailed(f"{where} answered, but not like an OpenAI-compatible API. Check the address: it usually "
                         "ends in /v1.", "base_url")
    raise explain(response, choice, where)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except (ValueError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _model_ids(body: dict[str, Any]) -> list[str] | None:
    data = body.get("data", body.get("models"))
    if not isinstance(data, list):
        return None
    ids = [str(item.get("id") or item.get("name") or "") for item in data if isinstance(item, dict)]
    return [i for i in ids if i]


def _offers(models: list[str], model: str) -> bool:
    """Ollama lists ``llama3.2:latest`` for ``llama3.2``."""
    return model in models or f"{model}:latest" in models or model.removesuffix(":latest") in models


def _error_text(response: httpx.Response) -> str:
    body = _json(response)
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or "")
    if isinstance(error, str):
        return error
    return str(body.get("message") or response.text[:300] or response.reason_phrase)


def explain(response: httpx.Response, choice: ModelChoice, where: str) -> StepFailed:
    """A refused or failed test call in plain words, with the fix and the field it concerns."""
    status = response.status_code
    text = _error_text(response).strip()
    lower = text.lower()
    anthropic = choice.kind == "anthropic"
    api = "Anthropic" if anthropic else f"The server at {where}"
    log.info("setup: the %s test call got HTTP %d: %s", choice.kind, status, text[:300])
    # Refusals by NanoClaw's own gateway come first: they are about NanoClaw, not the upstream.
    if "model gateway could not reach" in lower:
        if "timeout" in lower:
            return StepFailed(f"{where} did not answer in time. Check the address and that the server is up; then "
                              "try again.", "" if anthropic else "base_url")
        if anthropic:
            return StepFailed(f"NanoClaw could not reach Anthropic at {where}. Check the internet connection (and "
                              "the proxy settings, if you use a proxy), then try again.")
        return StepFailed(f"Nothing answers at {where}. Is the server running? For Ollama: start it (open the "
                          "Ollama app, or run `ollama serve`) and check the address and port.", "base_url")
    if "daily model spending limit" in lower:
        return StepFailed(text)
    if "cannot read your" in lower:
        return StepFailed(f"{text} Set a passphrase for the secret store in Settings, then try again.", "api_key")
    if status == 401:
        if anthropic:
            return StepFailed("Anthropic refused the key. Copy it again from console.anthropic.com → API Keys (the "
                              "whole key, starting with sk-ant-) and paste it here.", "api_key")
        return StepFailed(f"{api} refused the key ({text or 'HTTP 401'}). Copy the key again from your provider "
                          "(for OpenAI: platform.openai.com/api-keys).", "api_key")
    if status == 403:
        return StepFailed(f"{api} accepted the key but does not allow this call: {text or 'HTTP 403'}. Check the "
                          "key's permissions (workspace, allowed models) in your account.", "api_key")
    if "credit balance" in lower or "billing" in lower or "insufficient_quota" in lower or "quota" in lower:
        where_to = "console.anthropic.com → Billing" if anthropic else "your provider's billing page"
        return StepFailed(f"{api} says the account has no credit left ({text}). Add credit at {where_to}, then try "
                          "again.", "api_key")
    if status == 404 or ("model" in lower and status == 400):
        if "model" in lower:
            hint = "" if anthropic else f" For Ollama, run `ollama pull {choice.model}` first."
            return StepFailed(f"{api} does not know the model “{choice.model}” ({text}). Check the name.{hint}",
                              "model")
        return StepFailed(f"{where} has no OpenAI-compatible API at this address ({text or 'HTTP 404'}). Check "
                          "the address: it usually ends in /v1.", "" if anthropic else "base_url")
    if status == 429:
        return StepFailed(f"{api} accepted the key but is limiting requests right now ({text or 'rate limit'}). "
                          "Wait a minute and try again.")
    if status >= 500:
        return StepFailed(f"{api} had a problem of its own (HTTP {status}: {text or 'server error'}). This is "
                          "usually brief: try again in a minute.")
    return StepFailed(f"{api} refused the test call (HTTP {status}: {text or 'no reason given'}).")
