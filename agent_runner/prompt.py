"""The system prompt: who the agent is, whom it can reach, how to address them, its memory and its skills.

Built fresh for every query, because the host rewrites the destination list on every wake and the agent edits its own
memory file between conversations.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from agent_runner.config import RunnerConfig
from agent_runner.people_memory import Remembered, people_section
from agent_runner.protocol import Destination, DestinationType
from agent_runner.skills import OWN_SKILLS_DIR, load_own_skills, load_skills, render

log = logging.getLogger(__name__)

MEMORY_FILE = "MEMORY.md"
MAX_FILE_CHARS = 20_000
"""A skill or memory file longer than this is cut (with a note), so one runaway file cannot crowd out the prompt."""


def ensure_memory(agent_dir: Path) -> Path:
    """The agent's memory file, created empty if it does not exist yet."""
    agent_dir.mkdir(parents=True, exist_ok=True)
    path = agent_dir / MEMORY_FILE
    if not path.exists():
        path.touch()
    return path


def _read(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError as err:
        log.warning("cannot read %s: %s", path, err)
        return ""
    if len(text) > MAX_FILE_CHARS:
        text = text[:MAX_FILE_CHARS] + f"\n[… cut here: the file is longer; read {path} for the rest]"
    return text


def describe_destinations(destinations: Sequence[Destination]) -> str:
    """One line per destination: its name and what it is."""
    lines = []
    for dest in destinations:
        what = "another agent" if dest.type == DestinationType.AGENT else "a chat"
        shown = f" ({dest.display_name})" if dest.display_name and dest.display_name != dest.name else ""
        lines.append(f'- "{dest.name}": {what}{shown}')
    return "\n".join(lines)


def build(config: RunnerConfig, destinations: Sequence[Destination], *, memories: Sequence[Remembered] = ()) -> str:
    """The full system prompt for one query; ``memories``: the private memory of the people in its conversation."""
    memory_path = ensure_memory(config.agent_dir)
    names = ", ".join(f'"{d.name}"' for d in destinations)
    sections = [
        f"You are {config.assistant_name}, a personal assistant. People reach you through chat apps; other agents "
        "may write to you too.",
        "## How your replies are delivered\n"
        "Only text inside a message block reaches anyone:\n"
        '<message to="NAME">what NAME should read</message>\n'
        "- NAME is one of your destinations below. Every incoming message says where it came from in "
        'from="NAME"; answer with that name.\n'
        "- Write one block per recipient; several blocks in one reply go to several recipients.\n"
        "- Everything outside a block is your private scratchpad and is never sent. Put notes to yourself in "
        "<internal>…</internal>.\n"
        "- To say something before you have finished (progress on a long task), use the send_message tool.\n"
        "- Messages carry an id; use it with edit_message and add_reaction.\n"
        "- Times you see are in the timezone of the <context> header; times you give to tools are read in it too.",
        "## Your destinations\n"
        + (describe_destinations(destinations) if destinations else
           "You have no destinations right now, so nothing you write can be delivered."),
    ]
    if names:
        sections[-1] += f"\nValid names: {names}."
    memory = _read(memory_path)
    sections.append(
        f"## Your memory\nYour shared memory file is {memory_path}. Every conversation loads it, whoever is in it, "
        "so keep there only what everyone you help may know: household facts, shared plans and lists, your notes on "
        "ongoing work. What a person tells you about themselves goes in their own file (below), not here. Edit both "
        "with your file tools.\n"
        + (f"Its current contents:\n{memory}" if memory else "It is empty so far.")
    )
    sections.append(people_section(config.agent_dir, memories))
    skills = render(load_skills(config.skills_dir, config.skills_off), load_own_skills(config.agent_dir),
                    config.agent_dir / OWN_SKILLS_DIR)
    if skills:
        sections.append(skills)
    return "\n\n".join(sections)


__all__ = ["MEMORY_FILE", "build", "describe_destinations", "ensure_memory", "load_skills"]
