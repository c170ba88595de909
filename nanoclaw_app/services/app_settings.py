"""The settings a person edits in the app or with ``nanoclaw settings``: read, validate, save, apply.

Changes are saved to ``settings.json`` and swapped into the running host. Some are read only at start (the address the
app listens on, the timezone of the spend cap's day, the agent image's inputs); for those the answer says a restart is
needed, and keeps saying so (across page loads and CLI calls) until the host that was running has restarted.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import math
import os
import re
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nanoclaw_app.channels import registry
from nanoclaw_app.db import app_state
from nanoclaw_app.errors import ConfigError, UserError
from nanoclaw_app.runfile import read_run_file
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.settings import ANTHROPIC_API, ENV_PREFIX, Settings, load_settings, save_settings
from nanoclaw_app.tls import ensure_certificate, lan_address, read_certificate

APP_EDITABLE = ("timezone", "lan_access", "lan_https", "host", "port", "https_port", "daily_spend_cap_usd",
                "agent_base_image", "agent_ca_certificates", "anthropic_base_url", "voice_transcription",
                "transcription_base_url", "transcription_model", "transcription_key")
"""The app's own editable settings; each channel's settings object adds its fields (``registry.setting_fields``)."""
NEEDS_RESTART = frozenset({"lan_access", "lan_https", "host", "port", "https_port", "timezone", "agent_base_image",
                           "agent_ca_certificates"})
APPLIED_BY_HOST = frozenset({"agent_base_image", "agent_ca_certificates"})
"""Read at start by a CLI, but saved in the running host they apply at once (its next agent image build uses them)."""
RESTART_KEY = "settings.restart_needed"
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}")
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass
class AppSettings:
    """The editable settings in force, plus what the page needs to explain them."""

    timezone: str
    lan_access: bool
    lan_https: bool
    host: str
    port: int
    https_port: int
    daily_spend_cap_usd: float
    agent_base_image: str
    agent_ca_certificates: str
    anthropic_base_url: str
    """Where Anthropic calls go: Anthropic itself, a proxy or a compatible server (applies at once)."""
    voice_transcription: bool
    transcription_base_url: str
    transcription_model: str
    transcription_key: str
    """How voice notes are transcribed (``openai``: with the OpenAI key; ``none``: a local server); apply at once."""
    can_restart: bool
    """Whether this NanoClaw restarts itself on request (the page then offers "Restart now")."""
    lan_password_set: bool
    lan_url: str | None
    """Where other devices open the app; None when this computer's network address is not known."""
    lan_certificate_fingerprint: str | None
    """SHA-256 of the HTTPS certificate, for a phone's warning to be checked against; None until one is made."""
    restart_needed: list[str]
    """Saved settings the running NanoClaw does not use until it restarts."""
    fixed_by_environment: list[str]
    """Settings a ``NANOCLAW_<NAME>`` variable overrides: editing them here would change nothing."""
    channel_settings: dict[str, Any] = field(default_factory=dict)
    """The channels' own settings in force, by stored name (``whatsapp_reply_only``)."""


@dataclass
class ChannelField:
    """A channel's setting as the Settings page shows it."""

    key: str
    """Its stored name (``whatsapp_sends_per_minute``), the form field's name."""
    name: str
    kind: str
    """``bool``, ``int``, ``float`` or ``str``."""
    minimum: float | None = None
    maximum: float | None = None


@dataclass
class ChannelSection:
    """A channel's settings on the Settings page (labels come from the channel's strings)."""

    channel: str
    fields: list[ChannelField]


def value_of(settings: Settings, name: str) -> Any:
    """One setting by its stored name, a channel's (``whatsapp_reply_only``) as well as the app's."""
    theirs = registry.setting_fields().get(name)
    if theirs is None:
        return getattr(settings, name)
    return getattr(settings.channel(theirs[0]), theirs[1].name)


def editable() -> tuple[str, ...]:
    """Every setting that can be changed from the app and ``nanoclaw settings set``."""
    return (*APP_EDITABLE, *registry.setting_fields())


def page_sections() -> list[ChannelSection]:
    """The channels' settings the Settings page shows, per channel in the listed order."""
    sections = []
    for manifest in registry.CHANNELS:
        kind = manifest.settings
        shown = [f for f in dataclasses.fields(kind) if f.metadata.get("page")] if kind is not None else []
        if kind is not None and shown:
            sections.append(ChannelSection(manifest.name, [
                ChannelField(f"{kind.channel}_{f.name}", f.name, str(f.type), f.metadata.get("min"),
                             f.metadata.get("max")) for f in shown]))
    return sections


def parse_value(name: str, text: str) -> Any:
    """A setting's value from text (the CLI), typed like the setting; a clear error for an unknown name or value."""
    if name not in editable():
        raise UserError(f"{name!r} cannot be changed here; choose one of {', '.join(editable())}")
    text = text.strip()
    theirs = registry.setting_fields().get(name)
    kind = str(theirs[1].type) if theirs is not None else None
    try:
        if name in ("lan_access", "lan_https", "voice_transcription") or kind == "bool":
            if text.lower() not in (*_TRUE, *_FALSE):
                raise ValueError(text)
            return text.lower() in _TRUE
        if name in ("port", "https_port") or kind == "int":
            return int(text)
        if name == "daily_spend_cap_usd" or kind == "float":
            return float(text)
    except ValueError as err:
        raise UserError(f"{text!r} is not a valid value for {name}") from err
    return text


async def read_settings(services: AppServices) -> AppSettings:
    """The editable settings now in force."""
    current = services.settings
    cert = read_certificate(current.paths.home) if current.lan_https else None
    scheme, port = ("https", current.https_port) if current.lan_https else ("http", current.port)
    return AppSettings(
        **{name: getattr(current, name) for name in APP_EDITABLE},
        channel_settings={name: value_of(current, name) for name in registry.setting_fields()},
        lan_password_set=await services.auth.has_password(),
        lan_url=f"{scheme}://{address}:{port}/" if (address := lan_address()) else None,
        lan_certificate_fingerprint=cert.fingerprint if cert else None,
        restart_needed=await _restart_needed(services, current),
        can_restart=services.restart is not None,
        fixed_by_environment=[name for name in editable() if ENV_PREFIX + name.upper() in os.environ],
    )


async def update_settings(services: AppServices, changes: dict[str, Any]) -> AppSettings:
    """Validate, save and apply ``changes`` (name -> typed value); LAN access has :func:`set_lan_access`."""
    if "lan_access" in changes:
        raise UserError("turn LAN access on or off with its own switch: it needs a password")
    if not changes:
        return await read_settings(services)
    clean = await _validated(services, changes)
    if clean.get("lan_https"):
        _certificate(services)  # its fingerprint is shown before the restart uses it
    await _save(services, clean)
    return await read_settings(services)


async def set_lan_access(services: AppServices, enabled: bool, password: str | None = None) -> AppSettings:
    """Let other devices on the network open the app (password required), or stop it and sign them out."""
    if enabled:
        if password:
            await services.auth.set_password(password)
        elif not await services.auth.has_password():
            raise UserError("LAN access needs a password (at least 10 characters) for other devices to sign in")
        if services.settings.lan_https:
            _certificate(services)
        await _save(services, {"lan_access": True, "host": "0.0.0.0"})  # noqa: S104 - the point of LAN access
    else:
        await _save(services, {"lan_access": False, "host": "127.0.0.1"})
        await services.auth.sign_out_password_sessions()
    return await read_settings(services)


def _certificate(services: AppServices) -> None:
    """Make the LAN HTTPS certificate now, or say plainly why it cannot be made."""
    home = services.settings.paths.home
    try:
        ensure_certificate(home)
    except (OSError, ValueError) as err:
        raise UserError(f"the HTTPS certificate could not be made in {home} ({err}); check that NanoClaw can write "
                        "there, or choose plain HTTP") from err


async def _validated(services: AppServices, changes: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in editable():
            raise UserError(f"{name!r} cannot be changed here; choose one of {', '.join(editable())}")
        if ENV_PREFIX + name.upper() in os.environ:
            raise UserError(f"{ENV_PREFIX}{name.upper()} is set in NanoClaw's environment and overrides this "
                            "setting; change or remove the variable instead")
        clean[name] = _check(name, value, services.settings)
    if "host" in clean and not _is_loopback(clean["host"]) and not services.settings.lan_access:
        raise UserError(f"listening on {clean['host']} lets other devices connect: turn LAN access on first")
    return clean


def _check(name: str, value: Any, current: Settings) -> Any:
    """One value, checked and normalized; the error says how to fix it."""
    if name == "timezone":
        try:
            zoneinfo.ZoneInfo(str(value))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as err:  # OSError: a name too long for a path
            raise UserError(f"unknown timezone {value!r}: use an IANA name such as 'Europe/Berlin'") from err
        return str(value)
    if name in ("port", "https_port"):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
            raise UserError(f"port {value!r} must be a whole number from 1 to 65535 (0 picks a free one)")
        return value
    if name == "daily_spend_cap_usd":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise UserError("the daily spend cap must be 0 (no cap) or an amount in US dollars, such as 5")
        return round(float(value), 2)
    if name == "agent_base_image":
        if not isinstance(value, str) or not _IMAGE.fullmatch(value.strip()):
            raise UserError(f"{value!r} is not an image reference, e.g. docker.io/library/python:3.11-slim-bookworm")
        return value.strip()
    if name == "agent_ca_certificates":
        return _ca_file(str(value))
    if name == "host":
        text = str(value).strip()
        try:
            ipaddress.ip_address(text)
        except ValueError as err:
            if text != "localhost":
                raise UserError(f"{text!r} is not an IP address to listen on, e.g. 127.0.0.1 or 0.0.0.0") from err
        return text
    if name in ("lan_access", "lan_https", "voice_transcription"):
        if not isinstance(value, bool):
            raise UserError(f"{name} must be true or false")
        return value
    if name == "anthropic_base_url":
        return _anthropic_address(str(value))
    if name == "transcription_base_url":
        return _transcription_address(str(value))
    if name == "transcription_model":
        model = str(value).strip()
        if not _MODEL.fullmatch(model):
            raise UserError("the transcription model is a name without spaces, such as whisper-1 or "
                            "whisper-large-v3-turbo")
        return model
    if name == "transcription_key":
        if value not in ("openai", "none"):
            raise UserError("choose the OpenAI-compatible API key (“openai”) or no key (“none”, a local server)")
        return value
    return _check_channel(name, value, current)


def _check_channel(name: str, value: Any, current: Settings) -> Any:
    """A channel's setting: typed like its field, then checked by the channel's settings object."""
    kind, found = registry.setting_fields()[name]
    wanted = str(found.type)
    if wanted == "bool" and not isinstance(value, bool):
        raise UserError(f"{name} must be true or false")
    if wanted in ("int", "float") and (isinstance(value, bool) or not isinstance(value, int | float)
                                       or (wanted == "int" and not isinstance(value, int))):
        raise UserError(f"{name} must be a {'whole ' if wanted == 'int' else ''}number")
    if wanted == "str":
        value = str(value).strip().rstrip("/") if found.metadata.get("url") else str(value).strip()
    try:
        dataclasses.replace(current.channel(kind), **{found.name: value}).check()
    except ConfigError as err:
        raise UserError(str(err)) from err
    return value


def _anthropic_address(text: str) -> str:
    """An http(s) address without credentials, query or ``/v1`` (the gateway adds ``/v1/messages``); "" is Anthropic."""
    text = text.strip().rstrip("/")
    if not text:
        return ANTHROPIC_API
    example = "such as https://api.anthropic.com or http://192.168.1.20:4000"
    try:
        parts = urlsplit(text)
        port = parts.port  # a port that is not a number from 0 to 65535 raises ValueError
    except ValueError as err:
        raise UserError(f"{text!r} is not a web address {example}") from err
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0 or any(c.isspace() for c in text):
        raise UserError(f"the Anthropic address must start with http:// or https:// and name a server, {example}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise UserError("leave user names, passwords, ? and # out of the Anthropic address; the key goes in "
                        "API keys and tokens")
    if parts.path.endswith("/v1"):
        raise UserError(f"leave /v1 off the end of the Anthropic address ({text.removesuffix('/v1')}): NanoClaw "
                        "adds /v1/messages itself")
    return text


def _transcription_address(text: str) -> str:
    """An http(s) base URL of an OpenAI-compatible API (ending before ``/audio/transcriptions``)."""
    text = text.strip().rstrip("/").removesuffix("/audio/transcriptions")
    example = "such as https://api.openai.com/v1, https://api.groq.com/openai/v1 or http://127.0.0.1:8080/v1"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as err:
        raise UserError(f"{text!r} is not a web address {example}") from err
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0 or any(c.isspace() for c in text):
        raise UserError(f"the transcription address must start with http:// or https:// and name a server, {example}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise UserError("leave user names, passwords, ? and # out of the transcription address; the key goes in "
                        "API keys and tokens")
    return text


def _ca_file(text: str) -> str:
    """An absolute path to a file holding at least one PEM certificate, or "" to use none."""
    from nanoclaw_app.runtime.image import read_ca_certificates

    if not text.strip():
        return ""
    try:
        file = Path(text.strip()).expanduser()
        found = file.is_absolute() and file.is_file()
    except (OSError, RuntimeError, ValueError):  # an unknown ~user, a name too long, a NUL byte
        found = False
    if not found:
        raise UserError(f"there is no file at {text.strip()!r}; give the full path of the .pem or .crt file of "
                        "your CA certificates")
    read_ca_certificates(str(file))
    return str(file.resolve())


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def _save(services: AppServices, changes: dict[str, Any]) -> None:
    """Save to ``settings.json``, then swap the changed values into the running settings (keeping start overrides)."""
    before = services.settings
    paths = before.paths
    load_settings(paths, **changes)  # the whole file must still be valid with these changes
    save_settings(paths, changes, theirs=registry.setting_fields())
    fresh = load_settings(paths)
    after = before.replaced({name: value_of(fresh, name) for name in changes})
    if services.reload_settings is not None:
        await services.reload_settings(after)
    else:
        services.ctx.settings = after
    if services.live and APPLIED_BY_HOST & set(changes):
        from nanoclaw_app.services.engine_check import apply_image_settings

        apply_image_settings(services)
    await _remember_restart(services, before, changes)
    services.ctx.events.publish("settings.changed", changed=sorted(changes),
                                restart_needed=await _restart_needed(services, after))


def _running_run(services: AppServices) -> str | None:
    """The running host's run: this one in the app, the run file's in a CLI (None when none runs).

    A run, not a pid: a host restarted in the same process (the window's Restart now) starts a new run.
    """
    if services.live:
        return services.state.run
    record = read_run_file(services.settings.paths)
    if record is None:
        return None
    run = record.get("run") or record.get("pid")
    return str(run) if run else None


async def _load_record(services: AppServices, run: str | None) -> dict[str, Any]:
    raw = await app_state.get(services.ctx.db, RESTART_KEY)
    try:
        record = json.loads(raw) if raw else {}
    except ValueError:
        record = {}
    if not isinstance(record, dict) or record.get("run") != run or not isinstance(record.get("started"), dict):
        return {"run": run, "started": {}}  # that host has restarted since: nothing is pending from it
    return record


async def _remember_restart(services: AppServices, before: Settings, changes: dict[str, Any]) -> None:
    """Note what the running host started with, for each start-only setting changed (the first change counts)."""
    run = _running_run(services)
    if run is None:
        await app_state.delete(services.ctx.db, RESTART_KEY)  # no host runs: its next start reads the new file
        return
    record = await _load_record(services, run)
    for name in NEEDS_RESTART & set(changes) - (APPLIED_BY_HOST if services.live else frozenset()):
        record["started"].setdefault(name, getattr(before, name))
    await app_state.put(services.ctx.db, RESTART_KEY, json.dumps(record))


async def _restart_needed(services: AppServices, current: Settings) -> list[str]:
    run = _running_run(services)
    if run is None:
        return []
    started = (await _load_record(services, run))["started"]
    return sorted(name for name, value in started.items() if getattr(current, name) != value)


def request_restart(services: AppServices) -> None:
    """Restart the host now, to apply the settings that wait for it (the window stays; a server re-executes)."""
    if services.restart is None:
        raise UserError("this NanoClaw cannot restart itself (it was started by a test or another program); "
                        "stop it and start it again")
    services.ctx.events.publish("app.restarting")
    services.restart()
