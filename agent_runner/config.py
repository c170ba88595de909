"""Runner configuration: paths and provider settings from arguments and environment, never from the host's code.

Inside a container the defaults apply (``/workspace``, ``/workspace/agent``, ``/app/skills``); as a local subprocess
the host passes the real folders.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """Everything the runner needs to know, resolved once at start."""

    session_dir: Path = Path("/workspace")
    agent_dir: Path = Path("/workspace/agent")
    skills_dir: Path = Path("/app/skills")
    provider: str = "claude"
    model: str | None = None
    base_url: str | None = None
    """Model endpoint (the host's gateway); None means the provider's default."""
    api_key: str | None = None
    """A per-container token for the gateway — never a real provider key."""
    gateway_socket: Path | None = None
    """A unix socket to the host's model gateway (Linux): every model HTTP call goes over it, whatever host
    ``base_url`` names. None means ``base_url`` is reached over TCP (a Podman machine on macOS/Windows; tests)."""
    egress_socket: Path | None = None
    """The host's egress proxy as a unix socket (Linux, no network in the container): relayed on ``egress_port``."""
    egress_port: int = 3128
    """Loopback port the proxy variables name; the relay listens there."""
    model_max_retries: int = 2
    """Retries of a failed model call by the SDK or the Claude CLI (the CLI's own default is 10, even for a 401)."""
    timezone: str = "UTC"
    assistant_name: str = "Nano"
    max_messages_per_prompt: int = 10
    poll_seconds: float = 2.0
    """Fallback poll when file events are missed (VM mounts); file events wake the loop at once."""
    question_timeout_seconds: float = 300.0
    mcp_servers: dict[str, Any] = field(default_factory=dict)
    admin_user_ids: tuple[str, ...] = ()
    skills_off: tuple[str, ...] = ()
    """Shipped skills the owner turned off for this agent (``NANOCLAW_SKILLS_OFF``, comma-separated)."""

    @property
    def inbound_db(self) -> Path:
        """The host-written DB (read-only here)."""
        return self.session_dir / "inbound.db"

    @property
    def outbound_db(self) -> Path:
        """The runner-written DB."""
        return self.session_dir / "outbound.db"

    @property
    def heartbeat(self) -> Path:
        """Touched on every provider event; the host judges liveness by its mtime."""
        return self.session_dir / ".heartbeat"


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"NANOCLAW_{name}", default)


def _non_negative_int(name: str, default: int) -> int:
    raw = (_env(name) or "").strip()
    if not raw:
        return default
    value = int(raw)  # a typo must stop the runner at start, not silently become the default
    if value < 0:
        raise ValueError(f"NANOCLAW_{name} must be 0 or more, got {raw!r}")
    return value


def load_config(argv: Sequence[str] | None = None) -> RunnerConfig:
    """Arguments win over ``NANOCLAW_*`` environment variables, which win over the container defaults."""
    parser = argparse.ArgumentParser(prog="agent_runner")
    parser.add_argument("--session-dir")
    parser.add_argument("--agent-dir")
    parser.add_argument("--skills-dir")
    parser.add_argument("--provider")
    parser.add_argument("--model")
    args = parser.parse_args(argv)
    defaults = RunnerConfig()
    mcp = _env("MCP_SERVERS")
    admins = _env("ADMIN_USER_IDS")
    return RunnerConfig(
        session_dir=Path(args.session_dir or _env("SESSION_DIR") or defaults.session_dir),
        agent_dir=Path(args.agent_dir or _env("AGENT_DIR") or defaults.agent_dir),
        skills_dir=Path(args.skills_dir or _env("SKILLS_DIR") or defaults.skills_dir),
        provider=args.provider or _env("PROVIDER") or defaults.provider,
        model=args.model or _env("MODEL"),
        base_url=_env("MODEL_BASE_URL"),
        api_key=_env("MODEL_TOKEN"),
        gateway_socket=Path(socket) if (socket := _env("GATEWAY_SOCKET")) else None,
        egress_socket=Path(socket) if (socket := _env("EGRESS_SOCKET")) else None,
        egress_port=_non_negative_int("EGRESS_PORT", defaults.egress_port),
        model_max_retries=_non_negative_int("MODEL_MAX_RETRIES", defaults.model_max_retries),
        timezone=_env("TZ_NAME") or os.environ.get("TZ") or defaults.timezone,
        assistant_name=_env("ASSISTANT_NAME") or defaults.assistant_name,
        max_messages_per_prompt=int(_env("MAX_MESSAGES_PER_PROMPT") or defaults.max_messages_per_prompt),
        poll_seconds=float(_env("POLL_SECONDS") or defaults.poll_seconds),
        question_timeout_seconds=float(_env("QUESTION_TIMEOUT") or defaults.question_timeout_seconds),
        mcp_servers=json.loads(mcp) if mcp else {},
        admin_user_ids=tuple(a for a in (admins or "").split(",") if a),
        skills_off=tuple(s.strip() for s in (_env("SKILLS_OFF") or "").split(",") if s.strip()),
    )
