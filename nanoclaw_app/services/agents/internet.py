"""An agent's internet access: open (every connection logged) or only the sites its owner listed.

The home network is out of reach whatever is chosen here; the proxy enforces that before it asks about sites. Sites
are checked by ``egress.policy.check_site``, the function the proxy's policy matches with, so what the owner saves is
exactly what is enforced. A change is published as ``agent.egress_changed`` for the proxy's policy to reload, and it
applies to the agent's next connection, not its next container start.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db.rows import AgentGroup
from nanoclaw_app.egress.policy import check_site
from nanoclaw_app.errors import UserError
from nanoclaw_app.services.agents import lookup
from nanoclaw_app.services.context import AppServices

log = logging.getLogger(__name__)

INTERNET_MODES = ("open", "sites")
MAX_SITES = 200
"""More than this is not a list a person keeps by hand; "open" is the setting for that."""


@dataclass
class InternetAccess:
    """What an agent may reach on the internet."""

    agent_id: str
    mode: str
    """``open``: any site, every connection logged; ``sites``: only ``sites`` and their subdomains."""
    sites: list[str]
    """Kept while the mode is ``open`` too, so switching back does not lose the list."""


def stored_sites(agent: AgentGroup) -> list[str]:
    """The agent's saved sites; a damaged column reads as no sites (which, under ``sites``, reaches nothing)."""
    try:
        value = json.loads(agent.egress_sites_json or "[]")
    except ValueError:
        log.warning("agent %s has an unreadable site list; treating it as empty", agent.id)
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def access_of(agent: AgentGroup) -> InternetAccess:
    """The setting as stored on the agent's row (an unknown mode reads as ``sites``: refuse rather than open)."""
    mode = agent.egress_mode if agent.egress_mode in INTERNET_MODES else "sites"
    return InternetAccess(agent.id, mode, stored_sites(agent))


def check_sites(lines: Sequence[str]) -> list[str]:
    """The sites normalised and without repeats; ``UserError`` naming every bad line (blank lines are skipped)."""
    sites: list[str] = []
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            site = check_site(line)
        except ValueError as err:
            problems.append(f"Line {number}: {err}")
            continue
        if site not in sites:
            sites.append(site)
    if problems:
        raise UserError("\n".join(problems))
    if len(sites) > MAX_SITES:
        raise UserError(f"at most {MAX_SITES} sites; for more, choose \"open\" (every connection is still logged)")
    return sites


async def get_internet(services: AppServices, agent_id: str) -> InternetAccess:
    """The agent's internet access."""
    return access_of(await lookup.agent(services, agent_id))


async def set_internet(services: AppServices, agent_id: str, mode: str, sites: Sequence[str]) -> InternetAccess:
    """Save the agent's internet access; nothing changes unless the mode and every site are valid.

    ``sites`` with an empty list is allowed: the agent then reaches nothing but the model gateway.
    """
    agent = await lookup.agent(services, agent_id)
    if mode not in INTERNET_MODES:
        raise UserError(f"internet access must be \"open\" or \"sites\", not {mode!r}")
    clean = check_sites(sites)
    if not await agents_db.set_egress(services.ctx.db, agent.id, mode, clean):
        raise UserError(f"agent {agent.id} was deleted while saving; nothing was changed")
    log.info("internet access of agent %s set by the owner: %s %s", agent.id, mode, clean)
    services.ctx.events.publish("agent.egress_changed", agent_group_id=agent.id)
    return InternetAccess(agent.id, mode, clean)
