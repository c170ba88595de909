"""The ``claude`` provider: Claude Code (the CLI bundled with claude-agent-sdk) in one streaming session per query.

Claude Code brings its own tools (Bash, Read, Write, Edit, …): the container is the sandbox, so permissions are
bypassed. Our tools run in this process through an SDK MCP server (``claude_tools``). The CLI keeps the conversation as
a transcript under ``<agent_dir>/.claude``; our continuation is its session id and the entry that ended the last
answered turn (``claude_query.ResumePoint``), so a retried turn is not also replayed from the transcript.

Settings: ``setting_sources=["project", "local"]`` so the agent folder's own files are used on purpose —
``CLAUDE.md`` (shared instructions, imports), ``CLAUDE.local.md`` (the agent's memory, which it edits itself),
``.claude/settings.json`` and ``.claude/skills``. ``"user"`` is left out: with ``CLAUDE_CONFIG_DIR`` inside the agent
folder it would only read the same folder a second time, and nothing outside the agent folder should shape the agent.
``strict_mcp_config`` keeps MCP servers to the ones the host approved (a ``.mcp.json`` the agent writes is ignored).

Model calls go to the host's gateway with the container's token as the API key. When the gateway is a unix socket
(Linux), the CLI — which speaks HTTP only over TCP — is pointed at a loopback ``GatewayRelay`` owned by the provider;
a query that fails while the relay records a gateway outage says so (``gateway_lost``), since the CLI's own error text
cannot tell the relay's 502 from the gateway's.

The CLI takes about a second to start, so the runner starts the first session early (``start_early``, as soon as the
continuation and the system prompt are known); the first ``query`` with the same settings takes it over and sends its
prompt, and a query with other settings (after ``/clear``, say) closes it and starts its own.

This module builds the options; a running conversation is ``claude_query.ClaudeQuery`` and the transcript archive made
before compaction is ``claude_transcript``.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

from claude_agent_sdk import (
    ClaudeAgentOptions,
    SettingSource,
)
from claude_agent_sdk.types import McpServerConfig

from agent_runner.config import RunnerConfig
from agent_runner.gateway_relay import GatewayRelay
from agent_runner.providers.claude_query import ClaudeQuery, ResumePoint
from agent_runner.providers.claude_tools import SERVER_NAME, build_tool_server, mcp_tool_name
from agent_runner.tools.base import ToolSpec

log = logging.getLogger(__name__)

DISALLOWED_TOOLS = (
    "CronCreate",
    "CronDelete",
    "CronList",
    "ScheduleWakeup",
    "AskUserQuestion",
    "EnterPlanMode",
    "ExitPlanMode",
)
"""Claude Code tools we replace: scheduling and questions go through our own tools and the host."""

SETTING_SOURCES: list[SettingSource] = ["project", "local"]
_INVALID_SESSION = re.compile(
    r"no conversation found|no message found with message\.uuid|ENOENT[^\n]*\.jsonl"
    r"|transcript[^\n]*(?:missing|not found)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class _Settings:
    """What a session is started with, apart from its first message: a started one is reused only for equal ones."""

    continuation: str | None
    cwd: Path
    system_prompt: str
    tools: tuple[ToolSpec, ...]


class ClaudeProvider:
    """Creates one Claude Code session per query; resumes the stored session at its last answered turn."""

    name = "claude"
    supports_native_slash_commands = True

    def __init__(self, config: RunnerConfig) -> None:
        self._config = config
        self._relay = GatewayRelay(config.gateway_socket) if config.gateway_socket is not None else None
        self._early: tuple[_Settings, ClaudeQuery] | None = None
        """The session started by ``start_early`` that no query has taken yet."""
        self._dropped: list[ClaudeQuery] = []
        """Early sessions no query took: each is closed before the session that replaced it starts, and at the
        latest by ``aclose``."""

    @property
    def relay(self) -> GatewayRelay | None:
        """The loopback relay to the gateway socket, when there is one."""
        return self._relay

    async def aclose(self) -> None:
        """Close an early session no query took, then the gateway relay; a query still running loses its model."""
        sessions, self._dropped = self._dropped, []
        if self._early is not None:
            sessions.append(self._early[1])
            self._early = None
        for session in sessions:
            await session.abort()
        if self._relay is not None:
            await self._relay.aclose()

    def base_url(self) -> str | None:
        """Where the CLI sends model calls: the configured URL, or the relay with the same path over the socket."""
        if self._relay is None:
            return self._config.base_url
        path = urlsplit(self._config.base_url or "").path.rstrip("/")
        return self._relay.url(path)

    def start_early(self, *, continuation: str | None, cwd: Path, system_prompt: str, tools: list[ToolSpec]) -> None:
        """Start Claude Code now for the next query with these settings; it gets ready while the runner reads rows."""
        settings = _Settings(continuation, cwd, system_prompt, tuple(tools))
        replaced = None
        if self._early is not None:
            if self._early[0] == settings:
                return
            replaced = self._drop(self._early[1])
        session = self._new_query(None, settings, after=replaced)
        session.start()
        self._early = (settings, session)

    def query(
        self, *, prompt: str, continuation: str | None, cwd: Path, system_prompt: str, tools: list[ToolSpec]
    ) -> ClaudeQuery:
        """A session answering ``prompt``, resuming ``continuation`` when given.

        The early-started session when it was started with these settings, else a new one started on ``events()``.
        """
        settings = _Settings(continuation, cwd, system_prompt, tuple(tools))
        replaced = None
        if self._early is not None:
            early_settings, session = self._early
            self._early = None
            if early_settings == settings:
                session.push(prompt)
                log.info("the query takes over the Claude Code session started early")
                return session
            log.info("the Claude Code session started early was for other settings; closing it")
            replaced = self._drop(session)
        return self._new_query(prompt, settings, after=replaced)

    def _drop(self, session: ClaudeQuery) -> ClaudeQuery:
        self._dropped = [s for s in self._dropped if not s.closed]
        self._dropped.append(session)
        return session

    def _new_query(self, prompt: str | None, settings: _Settings, *, after: ClaudeQuery | None) -> ClaudeQuery:
        tools = list(settings.tools)
        base = self.options(continuation=settings.continuation, cwd=settings.cwd,
                            system_prompt=settings.system_prompt, tools=tools)
        return ClaudeQuery(
            prompt,
            options=lambda hooks, stderr: replace(base, hooks=hooks, stderr=stderr),
            resumed=ResumePoint.parse(settings.continuation) if settings.continuation else None,
            tool_timeouts={mcp_tool_name(t.name): t.declared_timeout_ms for t in tools},
            archive_dir=self._config.agent_dir / "conversations",
            timezone=self._config.timezone,
            assistant_name=self._config.assistant_name,
            model=self._config.model,
            prepare=functools.partial(self._prepare, after),
            gateway_lost=self._gateway_lost,
        )

    async def _prepare(self, replaced: ClaudeQuery | None) -> None:
        """Before a CLI starts: close the early session it replaces (one idle CLI at a time), open the relay."""
        if replaced is not None:
            await replaced.abort()
        if self._relay is not None:
            await self._relay.start()

    def _gateway_lost(self) -> bool:
        return self._relay is not None and self._relay.outage is not None

    def options(
        self, *, continuation: str | None, cwd: Path, system_prompt: str, tools: list[ToolSpec]
    ) -> ClaudeAgentOptions:
        """The SDK options for one session (hooks and the stderr sink are added per query)."""
        config = self._config
        resume = ResumePoint.parse(continuation) if continuation else None
        env = {
            "ENABLE_TOOL_SEARCH": "false",  # otherwise MCP tools hide behind ToolSearch
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",  # no telemetry, update checks or token counting
            "CLAUDE_CONFIG_DIR": str(config.agent_dir / ".claude"),
            "IS_SANDBOX": "1",  # the container is the sandbox; lets bypassPermissions run as root there
            "CLAUDE_CODE_MAX_RETRIES": str(config.model_max_retries),  # its default retries even a 401 ten times
        }
        base_url = self.base_url()
        if base_url:
            env["ANTHROPIC_BASE_URL"] = base_url
        if self._relay is not None:
            env.update(_no_proxy_for_loopback())
        if config.api_key:
            # Only the gateway token may authenticate: blank credentials inherited from a developer's shell.
            env.update({"ANTHROPIC_API_KEY": config.api_key, "ANTHROPIC_AUTH_TOKEN": "", "CLAUDE_CODE_OAUTH_TOKEN": ""})
        servers: dict[str, McpServerConfig] = {}
        for name, server in config.mcp_servers.items():
            if name == SERVER_NAME:
                log.warning("configured MCP server %r clashes with our own tool server; ignored", name)
                continue
            servers[name] = cast(McpServerConfig, server)
        servers[SERVER_NAME] = build_tool_server(tools)
        allowed = [mcp_tool_name(t.name) for t in tools] + [f"mcp__{name}" for name in servers if name != SERVER_NAME]
        return ClaudeAgentOptions(
            cwd=cwd,
            model=config.model,
            env=env,
            permission_mode="bypassPermissions",
            disallowed_tools=list(DISALLOWED_TOOLS),
            allowed_tools=allowed,
            mcp_servers=servers,
            strict_mcp_config=True,
            system_prompt={"type": "preset", "preset": "claude_code", "append": system_prompt},
            setting_sources=SETTING_SOURCES,
            resume=resume.session_id if resume else None,
            resume_session_at=resume.at if resume else None,
            include_partial_messages=True,
        )

    def is_session_invalid(self, error: BaseException | str) -> bool:
        """The stored session cannot be resumed: unknown, its transcript gone, or the resume point not in it.

        The loop then starts a fresh conversation rather than failing every message on this one.
        """
        return bool(_INVALID_SESSION.search(str(error)))



def _no_proxy_for_loopback() -> dict[str, str]:
    """Keep the relay's loopback address away from any proxy the container inherited (Podman passes the host's)."""
    current = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
    hosts = [h for h in current.replace(" ", ",").split(",") if h]
    hosts += [h for h in ("127.0.0.1", "localhost") if h not in hosts]
    value = ",".join(hosts)
    return {"NO_PROXY": value, "no_proxy": value}
