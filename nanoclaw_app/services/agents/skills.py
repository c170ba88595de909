"""Which shipped skills an agent's prompt carries: all by default, the owner turns single ones off.

Stored in ``container_configs.skills`` as ``{"off": [names]}``: a list of what is off, so a skill shipped later is on
for every agent without a migration. The column's older forms still read: ``"all"`` (nothing off) and a bare list
(the skills that are on). The runner gets the names as ``NANOCLAW_SKILLS_OFF`` and leaves them out; the owner's own
skills (``<agent folder>/skills/<name>/SKILL.md``) are read by the runner inside the container, never by the host.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from agent_runner.skills import OWN_SKILLS_DIR, Skill, load_skills
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.errors import UserError
from nanoclaw_app.paths import resource
from nanoclaw_app.services.agents import lookup
from nanoclaw_app.services.context import AppServices

log = logging.getLogger(__name__)

SKILLS_OFF_ENV = "NANOCLAW_SKILLS_OFF"
_SENTENCE = re.compile(r"^(.{1,160}?[.!?])(?:\s|$)", re.DOTALL)


@dataclass
class SkillChoice:
    """A shipped skill and whether this agent's prompt carries it."""

    name: str
    description: str
    enabled: bool


@dataclass
class SkillsView:
    """The agent's shipped skills, and where its owner's own skills go."""

    agent_id: str
    skills: list[SkillChoice]
    own_folder: str
    """``<agent folder>/skills``: a folder per skill with its ``SKILL.md``, loaded after the shipped ones."""


def shipped_skills() -> list[Skill]:
    """The skills NanoClaw ships (the folder the containers mount at ``/app/skills``), sorted by name."""
    return load_skills(resource("skills"))


def summary(skill: Skill) -> str:
    """The skill's one line: its front matter ``description``, else the first sentence of its text."""
    if skill.description:
        return skill.description
    text = " ".join(skill.body.replace("*", "").split())
    match = _SENTENCE.match(text)
    return match.group(1) if match else text[:160]


def skills_off(raw: str, shipped: Sequence[str]) -> list[str]:
    """The names switched off according to the stored column; anything unreadable means nothing is off (logged)."""
    try:
        value = json.loads(raw or '"all"')
    except ValueError:
        log.warning("unreadable skills setting %r; every skill stays on", raw)
        return []
    if isinstance(value, dict) and isinstance(value.get("off"), list):
        return sorted({str(name) for name in value["off"]})
    if isinstance(value, list):  # the older form: the skills that are on
        on = {str(name) for name in value}
        return [name for name in shipped if name not in on]
    return []


def runner_value(raw: str) -> str:
    """``NANOCLAW_SKILLS_OFF`` for a stored column: the names, comma-separated ("" when all are on)."""
    return ",".join(skills_off(raw, [s.name for s in shipped_skills()]))


async def get_skills(services: AppServices, agent_id: str) -> SkillsView:
    """Every shipped skill with whether this agent has it on."""
    agent = await lookup.agent(services, agent_id)
    config = await lookup.config(services, agent.id)
    return _view(services, agent.id, agent.folder, config.skills)


async def set_skills(services: AppServices, agent_id: str, off: Sequence[str]) -> SkillsView:
    """Switch off exactly ``off`` (every other shipped skill is on); an unknown name refuses the whole change."""
    agent = await lookup.agent(services, agent_id)
    config = await lookup.config(services, agent.id)
    known = [s.name for s in shipped_skills()]
    wanted = sorted({name.strip() for name in off if name.strip()})
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise UserError(f"there is no shipped skill called {', '.join(repr(n) for n in unknown)}; "
                        f"the skills are: {', '.join(known)}")
    if wanted != skills_off(config.skills, known):
        await agents_db.update_config(services.ctx.db, agent.id, skills=json.dumps({"off": wanted}))
        log.info("skills of agent %s: off %s", agent.id, wanted or "none")
        services.ctx.events.publish("agent.config_changed", agent_group_id=agent.id, change="skills")
    return _view(services, agent.id, agent.folder, json.dumps({"off": wanted}))


def _view(services: AppServices, agent_id: str, folder: str, raw: str) -> SkillsView:
    shipped = shipped_skills()
    off = set(skills_off(raw, [s.name for s in shipped]))
    own = services.settings.paths.agents / agents_db.check_folder(folder) / OWN_SKILLS_DIR
    return SkillsView(
        agent_id=agent_id,
        skills=[SkillChoice(s.name, summary(s), s.name not in off) for s in shipped],
        own_folder=str(own),
    )


__all__ = ["SKILLS_OFF_ENV", "SkillChoice", "SkillsView", "get_skills", "runner_value", "set_skills",
           "shipped_skills", "skills_off", "summary"]
