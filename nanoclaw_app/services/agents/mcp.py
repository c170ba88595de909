"""The MCP servers an agent's container starts.

A server is checked by the same rules as the agent's own ``add_mcp_server`` request (``core.system_actions``).
Environment values are masked whenever the list is shown: they are often API keys.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nanoclaw_app.core.system_actions import check_mcp_server
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db.rows import ContainerConfig
from nanoclaw_app.errors import NotFound, UserError
from nanoclaw_app.services.agents import lookup
from nanoclaw_app.services.context import AppServices

log = logging.getLogger(__name__)

RESERVED_MCP_NAMES = frozenset({"nanoclaw"})
"""The runner's own tool server is called ``nanoclaw``; a configured server of that name would be ignored."""
_MASK = "••••••"


@dataclass
class McpServer:
    """An MCP server the agent's container starts; environment values are masked."""

    name: str
    command: str
    args: list[str]
    env: dict[str, str]


async def list_mcp_servers(services: AppServices, agent_id: str) -> list[McpServer]:
    """The agent's MCP servers by name; environment values are masked (they are often API keys)."""
    agent = await lookup.agent(services, agent_id)
    return _listed(_servers(await lookup.config(services, agent.id)))


async def add_mcp_server(
    services: AppServices,
    agent_id: str,
    name: str,
    command: str,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> list[McpServer]:
    """Add a stdio MCP server (checked as the agent's own ``add_mcp_server`` request is); a taken name is refused."""
    agent = await lookup.agent(services, agent_id)
    config = await lookup.config(services, agent.id)
    server = check_mcp_server({"name": name, "command": command, "args": list(args), "env": dict(env or {})})
    clean_name = server["name"]
    if clean_name.casefold() in RESERVED_MCP_NAMES:
        raise UserError(f"{clean_name!r} is the name of NanoClaw's own tool server; pick another name")
    servers = _servers(config)
    if clean_name in servers:
        raise UserError(f"{agent.name} already has an MCP server called {clean_name!r}; remove it first to replace it")
    servers[clean_name] = {"command": server["command"], "args": server["args"], "env": server["env"]}
    await _save(services, agent.id, servers)
    log.info("MCP server %r added to agent %s by the owner: %s (env %s)", clean_name, agent.id, server["command"],
             sorted(server["env"]))
    return _listed(servers)


async def remove_mcp_server(services: AppServices, agent_id: str, name: str) -> list[McpServer]:
    """Remove an MCP server by name."""
    agent = await lookup.agent(services, agent_id)
    servers = _servers(await lookup.config(services, agent.id))
    if name not in servers:
        raise NotFound(f"{agent.name} has no MCP server called {name!r}")
    del servers[name]
    await _save(services, agent.id, servers)
    log.info("MCP server %r removed from agent %s by the owner", name, agent.id)
    return _listed(servers)


async def _save(services: AppServices, agent_id: str, servers: dict[str, Any]) -> None:
    await agents_db.update_config(services.ctx.db, agent_id, mcp_servers=json.dumps(servers))
    services.ctx.events.publish("agent.config_changed", agent_group_id=agent_id, change="mcp_servers")


def _servers(config: ContainerConfig) -> dict[str, Any]:
    try:
        value = json.loads(config.mcp_servers or "{}")
    except ValueError:
        log.warning("the MCP servers of agent %s are not valid JSON; shown as none", config.agent_group_id)
        return {}
    return value if isinstance(value, dict) else {}


def _listed(servers: dict[str, Any]) -> list[McpServer]:
    return [_shown(name, value) for name, value in sorted(servers.items())]


def _shown(name: str, value: object) -> McpServer:
    spec = value if isinstance(value, dict) else {}
    command = spec.get("command") or spec.get("url") or ""
    args = spec.get("args") if isinstance(spec.get("args"), list) else []
    env = spec.get("env") if isinstance(spec.get("env"), dict) else {}
    return McpServer(name=name, command=str(command), args=[str(a) for a in args or []],
                     env={str(k): _MASK for k in env or {}})
