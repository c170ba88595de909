"""Extra apt and pip packages built into an agent's image.

Names are checked by the same rules as the agent's own install requests (``core.system_actions``), so the owner cannot
save a list the agent itself would be refused, and the per-change limit keeps one edit from starting a huge build.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from nanoclaw_app.core.system_actions import APT_NAME, MAX_PACKAGES, PIP_NAME, package_names
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.errors import UserError
from nanoclaw_app.services.agents import lookup
from nanoclaw_app.services.context import AppServices

log = logging.getLogger(__name__)


@dataclass
class Packages:
    """Extra packages built into the agent's image."""

    agent_id: str
    apt: list[str]
    pip: list[str]
    rebuild_on_next_start: bool
    """True after a change: the next container start builds a new image (minutes, once)."""


async def get_packages(services: AppServices, agent_id: str) -> Packages:
    """The agent's extra apt and pip packages."""
    agent = await lookup.agent(services, agent_id)
    config = await lookup.config(services, agent.id)
    return Packages(agent.id, _json_list(config.packages_apt), _json_list(config.packages_pip), False)


async def set_packages(
    services: AppServices, agent_id: str, *, apt: Sequence[str] | None = None, pip: Sequence[str] | None = None
) -> Packages:
    """Replace the package lists (``None`` keeps one); names are checked as the agent's own requests are."""
    agent = await lookup.agent(services, agent_id)
    config = await lookup.config(services, agent.id)
    old_apt, old_pip = _json_list(config.packages_apt), _json_list(config.packages_pip)
    new_apt = old_apt if apt is None else package_names(list(apt), APT_NAME, "apt")
    new_pip = old_pip if pip is None else package_names(list(pip), PIP_NAME, "pip")
    added = len(set(new_apt) - set(old_apt)) + len(set(new_pip) - set(old_pip))
    if added > MAX_PACKAGES:
        raise UserError(f"at most {MAX_PACKAGES} new packages per change; add the rest in a second step")
    changed = new_apt != old_apt or new_pip != old_pip
    if changed:
        await agents_db.update_config(services.ctx.db, agent.id, packages_apt=json.dumps(new_apt),
                                      packages_pip=json.dumps(new_pip))
        log.info("packages of agent %s set by the owner: apt %s, pip %s", agent.id, new_apt, new_pip)
        services.ctx.events.publish("agent.config_changed", agent_group_id=agent.id, change="packages")
    return Packages(agent.id, new_apt, new_pip, changed)


def _json_list(text: str) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []
