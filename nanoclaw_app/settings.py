"""Frozen, typed settings loaded once from ``settings.json`` in the config dir, with ``NANOCLAW_*`` overrides.

Secrets never live here: settings only name keyring entries. A channel's own settings are declared in its folder (a
``ChannelSettings`` object, ``channels/<name>/settings.py``) and stored beside these as ``<channel>_<field>``; they are
kept here as given and typed and checked by :meth:`Settings.channel`, so this module knows no channel and a channel is
added without touching it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import zoneinfo
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from nanoclaw_app.errors import ConfigError
from nanoclaw_app.paths import Paths

ENV_PREFIX = "NANOCLAW_"
ANTHROPIC_API = "https://api.anthropic.com"


def detect_timezone() -> str:
    """Return the machine's IANA timezone name, or ``UTC`` when it cannot be told."""
    try:
        import tzlocal

        name = tzlocal.get_localzone_name()
    except Exception:  # tzlocal raises several kinds on odd systems; UTC is a safe answer
        return "UTC"
    return name or "UTC"


@dataclass(frozen=True)
class ChannelSettings:
    """Base of a channel's settings object (``channels/<name>/settings.py``).

    Each field, with its default, is stored in ``settings.json`` as ``<channel>_<field>`` and can be overridden with
    ``NANOCLAW_<CHANNEL>_<FIELD>``; the app reads it with ``settings.channel(TheSettings)``. A field with
    ``metadata={"page": True}`` is shown on the Settings page (``min``/``max`` bound a number there), labelled by the
    channel's strings ``setting_<field>`` and ``setting_<field>_hint``; every field can be set with ``nanoclaw
    settings set``.
    """

    channel: ClassVar[str] = ""

    def check(self) -> None:
        """Raise ``ConfigError`` (saying how to fix it) for a value the channel cannot work with."""


C = TypeVar("C", bound=ChannelSettings)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the host can be configured with. Each field says what it controls."""

    paths: Paths
    timezone: str = field(default_factory=detect_timezone)
    """IANA timezone used for message times shown to agents and for cron schedules."""
    host: str = "127.0.0.1"
    """Address the web UI binds to. Anything but loopback needs LAN access turned on."""
    port: int = 8765
    """Port of the web UI; 0 picks a free one."""
    lan_access: bool = False
    """Let other devices on the network open the app (needs a LAN password; ``host`` then may be ``0.0.0.0``)."""
    lan_https: bool = True
    """Other devices connect over HTTPS (a certificate made per install) on ``https_port``; this computer keeps plain
    HTTP on 127.0.0.1 and ``port``. Off: LAN devices use plain HTTP on ``port``, readable by the network."""
    https_port: int = 8766
    """Port other devices use when ``lan_https`` is on; 0 picks a free one."""
    log_level: str = "INFO"
    """Level for the console and the rotating log file."""
    max_attachment_bytes: int = 50 * 1024 * 1024
    """Largest attachment written into a session inbox or read from an outbox."""
    max_concurrent_containers: int = 4
    """Global cap on running agent containers; further wakes wait in a queue."""
    max_messages_per_prompt: int = 10
    """Most inbound messages batched into one prompt."""
    delivery_max_attempts: int = 3
    """Tries per outbound message before it is marked failed and the user is told."""
    claim_stuck_seconds: float = 60.0
    """A claim older than this, with no heartbeat since, means the container is stuck."""
    heartbeat_ceiling_seconds: float = 1800.0
    """A container whose heartbeat is older than this is stopped."""
    max_claim_tries: int = 5
    """Retries of an inbound message after crashes before it is marked failed."""
    retry_base_seconds: float = 5.0
    """Backoff base for retried claims: base × 2^tries."""
    sweep_interval_seconds: float = 60.0
    """How often the sweep checks every active session."""
    fallback_poll_seconds: float = 1.0
    """Delivery poll for running sessions when file events are missed (VM mounts)."""
    approval_ttl_seconds: float = 24 * 3600.0
    """An approval card not answered within this is expired and treated as deny."""
    sender_denial_seconds: float = 7 * 24 * 3600.0
    """How long a denied sender stays silently refused before a new card may be sent."""
    agent_hop_cap: int = 4
    """Most agent-to-agent hops a conversation may take before the loop is broken."""
    max_agents_created_by_agents: int = 10
    """Most agents that exist at agents' request (each one also needs an admin's approval)."""
    turn_budget: int = 60
    """Most turns (wakes with new work) one session may take in ``turn_window_seconds``; past it the session is paused
    and the owner asked whether it may go on: a circuit breaker against loops of any cause."""
    turn_window_seconds: float = 600.0
    """The sliding window ``turn_budget`` counts in."""
    turn_pause_seconds: float = 600.0
    """How long a session over its turn budget stays paused, unless the owner lets it go on sooner."""
    idle_stop_seconds: float = 600.0
    """A container with no activity for this long is stopped."""
    runtime: str = "podman"
    """Container engine for agent sessions: ``podman`` (the sandbox), or ``local`` (a plain subprocess, development)."""
    podman_url: str = ""
    """Podman REST socket, e.g. ``unix:///run/podman/podman.sock``; empty finds the user's socket or starts one."""
    agent_base_image: str = "docker.io/library/python:3.11-slim-bookworm"
    """Base of the agent image. A registry image by default; a local image (``localhost/...``) works offline."""
    agent_ca_certificates: str = ""
    """A PEM file of extra CA certificates for agent containers and image builds (corporate TLS proxies)."""
    egress_approval_seconds: float = 120.0
    """How long a request held for a credential approval waits; unanswered, the agent gets a 403 and is told."""
    egress_trusted_ca_file: str = ""
    """A PEM file of CAs the egress proxy trusts for sites that have a credential (a home server's own certificate),
    on top of the public ones and ``agent_ca_certificates``."""
    egress_private_exceptions: str = ""
    """Comma-separated ``host:port`` the egress proxy may reach although they are on the home network. For
    development against local fakes only: the Settings page does not offer it, and every use is logged."""
    container_memory_mb: int = 2048
    """Memory limit of each agent container."""
    container_cpus: float = 2.0
    """CPU limit of each agent container, in cores."""
    container_pids_limit: int = 512
    """Most processes one agent container may run."""
    container_stop_grace_seconds: float = 5.0
    """How long a container gets to exit after SIGTERM before it is killed."""
    container_standby: int = 3
    """How many recently active sessions keep their next container created and initialised, not started (about
    13 MB each), so the engine part of their next start takes a tenth of the time; 0 turns this off."""
    gateway_transport: str = "auto"
    """How containers reach the model gateway: ``unix`` (a socket mounted in; Linux), ``tcp`` (Podman machine on
    macOS/Windows, via ``host.containers.internal``) or ``auto``."""
    anthropic_base_url: str = ANTHROPIC_API
    """Upstream the gateway forwards Anthropic requests to (a proxy or an Anthropic-compatible server works too);
    without ``/v1``, which the clients add. Applies at once."""
    openai_base_url: str = "https://api.openai.com/v1"
    """Upstream the gateway forwards OpenAI-compatible requests to (e.g. ``http://localhost:11434/v1`` for Ollama)."""
    daily_spend_cap_usd: float = 0.0
    """Model spending allowed per day (midnight to midnight in ``timezone``), over all agents; 0 turns the cap off."""
    voice_transcription: bool = False
    """Transcribe voice notes and audio before the agent gets them (through the model gateway, so the key stays here
    and each call is counted); off, the agent gets the audio file only."""
    transcription_base_url: str = "https://api.openai.com/v1"
    """An OpenAI-compatible server with ``/audio/transcriptions``: OpenAI, Groq
    (``https://api.groq.com/openai/v1``) or a local whisper.cpp server (``http://127.0.0.1:8080/v1``)."""
    transcription_model: str = "whisper-1"
    """The transcription model as that server names it (``whisper-1``, ``whisper-large-v3-turbo``)."""
    transcription_key: str = "openai"
    """Which key goes with the calls: ``openai`` (the OpenAI-compatible API key) or ``none`` (a local server)."""
    transcription_max_seconds: int = 600
    """Longer audio is not sent for transcription (the note still arrives, saying so)."""
    channel_values: Mapping[str, Any] = field(default_factory=dict)
    """Settings this module does not declare, as given (``telegram_api_base_url``): the channels' own, read through
    :meth:`channel`, which types and checks them."""

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        """The configured timezone as a ``ZoneInfo``."""
        return zoneinfo.ZoneInfo(self.timezone)

    def channel(self, kind: type[C]) -> C:
        """A channel's settings object (``settings.channel(TelegramSettings).api_base_url``), typed and checked.

        Raises ``ConfigError`` saying how to fix a value the channel cannot use.
        """
        prefix = f"{kind.channel}_"
        values = {f.name: _coerce(prefix + f.name, self.channel_values[prefix + f.name], f.type)
                  for f in dataclasses.fields(kind) if prefix + f.name in self.channel_values}
        found = kind(**values)
        found.check()
        return found

    def replaced(self, changes: Mapping[str, Any]) -> Settings:
        """These settings with ``changes`` (stored names, a channel's too) swapped in."""
        own = {k: v for k, v in changes.items() if k in _FIELDS}
        theirs = {k: v for k, v in changes.items() if k not in _FIELDS}
        return dataclasses.replace(self, **own, channel_values={**self.channel_values, **theirs})


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name not in ("paths", "channel_values")}
_THEIRS = re.compile(r"[a-z][a-z0-9]*_[a-z0-9_]+")
"""The shape of a channel's setting (``<channel>_<field>``); which ones exist is the channels' business."""


def _coerce(name: str, raw: Any, kind: object = None) -> Any:
    """Turn a JSON or environment value into the field's type, with a fix-it message on failure."""
    kind = kind or _FIELDS[name].type
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return text in ("1", "true", "yes", "on")
        return str(raw)
    except (TypeError, ValueError) as err:
        words = {"int": "a whole number", "float": "a number", "bool": "true or false"}.get(str(kind), f"a {kind}")
        raise ConfigError(f"setting {name!r} must be {words}, got {raw!r}: fix it in settings.json") from err


def load_settings(paths: Paths | None = None, **overrides: Any) -> Settings:
    """Build settings from ``settings.json``, then ``NANOCLAW_<NAME>`` env vars, then keyword overrides."""
    paths = paths or Paths.from_env()
    values: dict[str, Any] = {}
    theirs: dict[str, Any] = {}
    file = paths.settings_file
    if file.exists():
        try:
            stored = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ConfigError(f"cannot read {file}: {err}. Fix or delete the file.") from err
        if not isinstance(stored, dict):
            raise ConfigError(f"{file} must hold a JSON object")
        for key, value in stored.items():
            if key in _FIELDS:
                values[key] = _coerce(key, value)
            elif _THEIRS.fullmatch(key):
                theirs[key] = value
    for env_name, env in os.environ.items():
        if not env_name.startswith(ENV_PREFIX):
            continue
        name = env_name.removeprefix(ENV_PREFIX).lower()
        if name in _FIELDS:
            values[name] = _coerce(name, env)
        elif _THEIRS.fullmatch(name):
            theirs[name] = env
    for key, value in overrides.items():
        if key in _FIELDS:
            values[key] = value
        elif _THEIRS.fullmatch(key):
            theirs[key] = value
        else:
            raise ConfigError(f"unknown setting {key!r}")
    settings = Settings(paths=paths, **values, channel_values=theirs)
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    try:
        zoneinfo.ZoneInfo(settings.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
        raise ConfigError(
            f"unknown timezone {settings.timezone!r}: use an IANA name such as 'Europe/Berlin'"
        ) from err
    if not 0 <= settings.port <= 65535:
        raise ConfigError(f"port {settings.port} is out of range 0-65535")
    for name in ("max_concurrent_containers", "max_messages_per_prompt", "delivery_max_attempts",
                 "container_memory_mb", "container_pids_limit"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"setting {name!r} must be at least 1")
    if settings.container_standby < 0:
        raise ConfigError("setting 'container_standby' must be 0 (off) or more")
    if settings.container_cpus <= 0:
        raise ConfigError("setting 'container_cpus' must be more than 0")
    if settings.turn_budget < 1 or settings.max_agents_created_by_agents < 0:
        raise ConfigError("setting 'turn_budget' must be at least 1 and 'max_agents_created_by_agents' 0 or more")
    if settings.turn_window_seconds <= 0 or settings.turn_pause_seconds <= 0:
        raise ConfigError("settings 'turn_window_seconds' and 'turn_pause_seconds' must be more than 0")
    if settings.daily_spend_cap_usd < 0:
        raise ConfigError("setting 'daily_spend_cap_usd' must be 0 (off) or more")
    for name in ("anthropic_base_url", "openai_base_url", "transcription_base_url"):
        if not getattr(settings, name).startswith(("http://", "https://")):
            raise ConfigError(f"setting {name!r} must start with http:// or https://")
    choices = {"runtime": ("podman", "local"), "gateway_transport": ("auto", "unix", "tcp"),
               "transcription_key": ("openai", "none")}
    for name, allowed in choices.items():
        if getattr(settings, name) not in allowed:
            raise ConfigError(f"setting {name!r} must be one of {', '.join(allowed)}; got {getattr(settings, name)!r}")


def save_settings(paths: Paths, changes: Mapping[str, Any], *, theirs: Collection[str] = ()) -> None:
    """Merge ``changes`` into ``settings.json`` atomically (write a temp file, then rename).

    ``theirs`` names the channels' settings that may be written too (``channels.registry.setting_fields``); any other
    name is refused, so nothing unknown (a key pasted in the wrong place) ends up in the file.
    """
    for key in changes:
        if key not in _FIELDS and key not in theirs:
            raise ConfigError(f"unknown setting {key!r}")
    file = paths.settings_file
    current: dict[str, Any] = {}
    if file.exists():
        current = json.loads(file.read_text(encoding="utf-8"))
    current.update(changes)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{file}.tmp")
    tmp.write_text(json.dumps(current, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(file)
