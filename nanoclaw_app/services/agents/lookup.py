"""Finding an agent, its container config and its workspace: every agents-service function starts here.

One place for the lookups so a missing agent or config is refused with the same words whichever page or command asked.
"""

from __future__ import annotations

from pathlib import Path

from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import AgentGroup, ContainerConfig
from nanoclaw_app.errors import NotFound, UserError
from nanoclaw_app.services.context import AppServices


async def agent_by_ref(db: Database, ref: str) -> AgentGroup:
    """An agent by id, folder or name (case-insensitive, must be unique), so commands can say ``Nano``."""
    ref = ref.strip()
    everyone = await agents_db.list_all(db)
    for found in everyone:
        if ref in (found.id, found.folder):
            return found
    named = [a for a in everyone if a.name.casefold() == ref.casefold()]
    if len(named) == 1:
        return named[0]
    if named:
        raise UserError(f"several agents are called {ref!r}; use the id: {', '.join(a.id for a in named)}")
    raise NotFound(f"no agent {ref!r}; `nanoclaw agents list` shows the agents and their ids")


async def agent(services: AppServices, agent_id: str) -> AgentGroup:
    """The agent by id; ``NotFound`` when it does not exist (any more)."""
    found = await agents_db.get(services.ctx.db, agent_id)
    if found is None:
        raise NotFound(f"no agent {agent_id!r}; it may have been deleted")
    return found


async def config(services: AppServices, agent_id: str) -> ContainerConfig:
    """The agent's container config; every agent gets one when it is created, so a missing one is a broken agent."""
    found = await agents_db.get_config(services.ctx.db, agent_id)
    if found is None:
        raise UserError(f"agent {agent_id} has no container config; delete and create it again")
    return found


def workspace(services: AppServices, of: AgentGroup) -> Path:
    """The agent's folder under the home dir (its folder name checked, so a stored name cannot point elsewhere)."""
    return services.settings.paths.agents / agents_db.check_folder(of.folder)
