"""Skills for the system prompt: the shipped ones the owner left on, then the owner's own from the agent folder.

Shipped skills (``/app/skills``, read-only, ours) are read as they are. Own skills live in ``<agent dir>/skills``,
which the agent itself can write: any entry may be a link to a file the prompt should not carry (``/etc/passwd``), a
FIFO that blocks an open, or a huge file. They are opened by descriptor without following links, only regular files
are read, and each is read up to a byte cap, with a cap on how many and how much in total reach the prompt.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SKILL_FILES = ("SKILL.md", "instructions.md")
OWN_SKILLS_DIR = "skills"
"""The owner's own skills: ``<agent folder>/skills/<name>/SKILL.md`` (``/workspace/agent/skills`` in the container)."""
MAX_SKILL_CHARS = 20_000
"""A skill longer than this is cut (with a note), so one runaway file cannot crowd out the prompt."""
OWN_SKILL_MAX_BYTES = 32_000
"""Bytes read from one own skill file; the rest is never read."""
MAX_OWN_SKILLS = 20
OWN_SKILLS_MAX_CHARS = 40_000
"""Own skills past this total are listed by name only."""
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.DOTALL)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


@dataclass(frozen=True, slots=True)
class Skill:
    """One skill as the prompt shows it."""

    name: str
    description: str
    body: str


def parse(name: str, text: str) -> Skill:
    """Split an optional ``---`` front matter (its ``description:`` line is the one-line summary) from the body."""
    text = text.replace("\r\n", "\n").strip()
    description = ""
    match = _FRONT_MATTER.match(text)
    if match is not None:
        for line in match.group(1).splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "description":
                description = value.strip()
        text = text[match.end():].strip()
    return Skill(name=name, description=description, body=text)


def _cut(text: str, where: str) -> str:
    if len(text) > MAX_SKILL_CHARS:
        return text[:MAX_SKILL_CHARS] + f"\n[… cut here: the skill is longer; read {where} for the rest]"
    return text


def load_skills(skills_dir: Path, off: Collection[str] = ()) -> list[Skill]:
    """The shipped skills under ``skills_dir`` except those named in ``off``, sorted by folder name."""
    if not skills_dir.is_dir():
        return []
    skills: list[Skill] = []
    for folder in sorted(p for p in skills_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if folder.name in off:
            continue
        for file_name in SKILL_FILES:
            path = folder / file_name
            if not path.is_file():
                continue
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError as err:
                log.warning("cannot read skill %s: %s", path, err)
                continue
            skill = parse(folder.name, _cut(text, str(path)))
            if skill.body:
                skills.append(skill)
    return skills


def load_own_skills(agent_dir: Path) -> list[Skill]:
    """The owner's (or the agent's) skills in ``<agent_dir>/skills``; links, devices and FIFOs are skipped."""
    root = agent_dir / OWN_SKILLS_DIR
    skills: list[Skill] = []
    total = 0
    skipped: list[str] = []
    for name, data in _own_skill_files(root):
        skill = parse(name, _cut(data.decode("utf-8", errors="replace"), str(root / name)))
        if not skill.body:
            continue
        if len(skills) >= MAX_OWN_SKILLS or total + len(skill.body) > OWN_SKILLS_MAX_CHARS:
            skipped.append(name)
            continue
        total += len(skill.body)
        skills.append(skill)
    if skipped:
        note = (f"These skills were left out to keep the prompt small: {', '.join(skipped)}. Read them from {root} "
                "when they apply, or shorten your skills.")
        skills.append(Skill(name="(more skills)", description="", body=note))
    return skills


def _own_skill_files(root: Path) -> Iterator[tuple[str, bytes]]:
    """``(folder name, capped bytes)`` of each own skill, in name order; nothing that is not a plain file is read."""
    if not {os.open, os.stat} <= os.supports_dir_fd:
        return  # no descriptor-relative opens (Windows): own skills are a container feature
    try:
        top = os.open(root, os.O_RDONLY | _DIRECTORY | _NOFOLLOW)
    except OSError:
        return  # none yet, or the name is a link or a file: nothing to load
    try:
        with os.scandir(top) as entries:
            names = sorted(e.name for e in entries if not e.name.startswith("."))
        for name in names[: MAX_OWN_SKILLS * 5]:
            data = _read_skill_folder(top, name)
            if data is not None:
                yield name, data
    finally:
        os.close(top)


def _read_skill_folder(top: int, name: str) -> bytes | None:
    try:
        folder = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=top)
    except OSError:
        return None  # a file, a link, or gone
    try:
        for file_name in SKILL_FILES:
            data = _read_plain(folder, file_name)
            if data is not None:
                return data
        return None
    finally:
        os.close(folder)


def _read_plain(folder: int, file_name: str) -> bytes | None:
    """At most ``OWN_SKILL_MAX_BYTES`` of a regular file; never follows a link, never waits on a FIFO."""
    try:
        fd = os.open(file_name, os.O_RDONLY | _NOFOLLOW | _NONBLOCK, dir_fd=folder)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            log.warning("own skill %s is not a plain file; skipped", file_name)
            return None
        chunks: list[bytes] = []
        left = OWN_SKILL_MAX_BYTES
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if left == 0:
            with contextlib.suppress(OSError):
                if os.read(fd, 1):
                    cut = data.decode("utf-8", errors="ignore")
                    return (cut + "\n[… cut here: the skill file is longer than NanoClaw reads]").encode()
        return data
    except OSError as err:
        log.warning("cannot read own skill %s: %s", file_name, err)
        return None
    finally:
        os.close(fd)


def render(shipped: list[Skill], own: list[Skill], own_dir: Path) -> str:
    """The prompt's skill sections; empty when there are none."""

    def block(skill: Skill) -> str:
        head = f"### {skill.name}" + (f" ({skill.description})" if skill.description else "")
        return f"{head}\n{skill.body}"

    sections: list[str] = []
    if shipped:
        sections.append("## Skills\n" + "\n\n".join(block(s) for s in shipped))
    if own:
        sections.append(f"## Your own skills\nFrom {own_dir} (your owner or you wrote these; they follow the skills "
                        "above).\n\n" + "\n\n".join(block(s) for s in own))
    return "\n\n".join(sections)


__all__ = [
    "MAX_OWN_SKILLS",
    "OWN_SKILLS_DIR",
    "OWN_SKILL_MAX_BYTES",
    "SKILL_FILES",
    "Skill",
    "load_own_skills",
    "load_skills",
    "parse",
    "render",
]
