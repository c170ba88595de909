"""Each person's private memory with one agent, as the People page shows and edits it (household memory).

The agent keeps what a person tells it about themselves in ``people/<key>.md`` in its folder (the runner loads that
file only into conversations the person is part of; see ``agent_runner.people_memory``). The folder is writable by
the agent's containers, so everything here goes through :class:`MountedDir`: the ``people`` folder and the file are
opened without following links, pipes and devices are refused with a sentence, reads are size-capped, and saves are
written beside the file and renamed over it. A version check keeps the owner from overwriting what the agent wrote
meanwhile.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from agent_runner.people_memory import PEOPLE_DIR, person_key
from agent_runner.prompt import MAX_FILE_CHARS
from nanoclaw_app.errors import UnsafePath, UserError
from nanoclaw_app.services import memory_text, people
from nanoclaw_app.services.agents import lookup
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.sessions.mounted import MountedDir

log = logging.getLogger(__name__)

MAX_BYTES = 64 * 1024
"""The editor refuses more: the prompt shows only the first ``MAX_FILE_CHARS`` characters of the file anyway."""


@dataclass
class PersonMemory:
    """One person's memory file with one agent. ``version`` guards against overwriting the agent's newer edits."""

    agent_id: str
    user_id: str
    name: str
    path: str
    text: str
    bytes: int
    version: str
    max_bytes: int
    prompt_chars: int
    cut_in_prompt: bool
    lossy: bool
    """The file held bytes that are not UTF-8; they show as U+FFFD, and saving writes those instead."""


@dataclass
class PersonEntry:
    """A person the agent may remember: everyone who may talk to it, and anyone it already keeps a file for."""

    user_id: str
    name: str
    bytes: int | None
    """The file's size; None when the agent keeps no file for them yet, or the entry there cannot be read safely."""


@dataclass
class AgentPeople:
    """Whose memory an agent keeps, for the People page's picker."""

    agent_id: str
    folder: str
    people: list[PersonEntry]


async def list_for_agent(services: AppServices, agent_id: str) -> AgentPeople:
    """Everyone who may talk to the agent (owners, its admins, its members) plus anyone it has a memory file for."""
    agent = await lookup.agent(services, agent_id)
    folder = lookup.workspace(services, agent) / PEOPLE_DIR
    everyone = await people.list_people(services)
    sizes = await services.ctx.store.run_io(lambda: _sizes(folder))
    entries: list[PersonEntry] = []
    for person in everyone:
        key = f"{person_key(person.id)}.md"
        may_talk = any(r.role == "owner" or r.agent_group_id in (None, agent.id) for r in person.roles) \
            or any(m.agent_group_id == agent.id for m in person.memberships)
        if may_talk or key in sizes:
            entries.append(PersonEntry(person.id, person.name, sizes.get(key)))
    return AgentPeople(agent.id, str(folder), entries)


async def get(services: AppServices, agent_id: str, user_ref: str) -> PersonMemory:
    """The person's memory file with the agent (empty if it keeps none yet); an unsafe entry is refused in words."""
    agent = await lookup.agent(services, agent_id)
    user = await people.user_by_ref(services.ctx.db, user_ref)
    workspace = lookup.workspace(services, agent)
    name = f"{person_key(user.id)}.md"
    data = await services.ctx.store.run_io(lambda: _read(workspace, name))
    return _memory(agent.id, user.id, user.display_name or user.id, workspace / PEOPLE_DIR / name, data)


async def put(
    services: AppServices, agent_id: str, user_ref: str, text: str, *, base_version: str | None = None
) -> PersonMemory:
    """Replace the person's memory file atomically (UTF-8, at most ``MAX_BYTES``).

    With ``base_version`` (from :func:`get`), refuses when the file changed since: the agent edits it too.
    """
    agent = await lookup.agent(services, agent_id)
    user = await people.user_by_ref(services.ctx.db, user_ref)
    data = memory_text.encode(text, MAX_BYTES)
    workspace = lookup.workspace(services, agent)
    name = f"{person_key(user.id)}.md"

    def write() -> None:
        # the read also refuses a planted link or pipe before anything is written
        current = memory_text.version(_read(workspace, name))
        if base_version is not None and current != base_version:
            raise UserError("This memory changed since you opened it (the agent may have written to it). Load the "
                            "newest text, then make your change again.")
        with MountedDir.open(workspace, create=True) as top, top.subdir(PEOPLE_DIR, create=True) as folder:
            folder.replace(name, data, mode=0o600)

    await services.ctx.store.run_io(write)
    log.info("memory of %s with agent %s saved by the owner (%d bytes)", user.id, agent.id, len(data))
    services.ctx.events.publish("agent.person_memory_saved", agent_group_id=agent.id, user_id=user.id,
                                bytes=len(data))
    return _memory(agent.id, user.id, user.display_name or user.id, workspace / PEOPLE_DIR / name, data)


async def start_afresh(services: AppServices, agent_id: str, user_ref: str) -> PersonMemory:
    """Remove whatever stands at the person's file name (a link or pipe is removed itself, never followed).

    The way out when :func:`get` refuses an entry the agent made that is not a plain file.
    """
    agent = await lookup.agent(services, agent_id)
    user = await people.user_by_ref(services.ctx.db, user_ref)
    workspace = lookup.workspace(services, agent)
    name = f"{person_key(user.id)}.md"

    def remove() -> None:
        with MountedDir.open(workspace) as top:
            info = top.lstat(PEOPLE_DIR)
            if info is None:
                return
            try:
                folder = top.subdir(PEOPLE_DIR)
            except UnsafePath:
                top.unlink(PEOPLE_DIR)  # a link or file where the folder belongs: removed, never followed
                return
            with folder:
                folder.remove_tree(name)

    await services.ctx.store.run_io(remove)
    log.warning("memory file of %s with agent %s removed by the owner to start afresh", user.id, agent.id)
    services.ctx.events.publish("agent.person_memory_saved", agent_group_id=agent.id, user_id=user.id, bytes=0)
    return _memory(agent.id, user.id, user.display_name or user.id, workspace / PEOPLE_DIR / name, b"")


def _read(workspace: Path, name: str) -> bytes:
    """The file's bytes (empty when there is none); never follows a link or opens a pipe or device."""
    try:
        with MountedDir.open(workspace) as top:
            if top.lstat(PEOPLE_DIR) is None:
                return b""
            with top.subdir(PEOPLE_DIR) as folder:
                return folder.read_bytes(name, max_bytes=MAX_BYTES)
    except FileNotFoundError:
        return b""
    except UnsafePath as err:
        where = str(err).split(" is ", 1)[0].split(" has ", 1)[0].split(" grew ", 1)[0]
        detail = str(err)[len(where):].strip()
        if "limit" in detail or "grew" in detail:
            raise UserError(f"The memory file {where} is too large to show here ({detail.removeprefix('is ')}). "
                            "Start this memory afresh to replace it with an empty one.") from err
        detail = detail.replace("a symlink", "a symbolic link (a pointer to another file)")
        raise UserError(f"NanoClaw does not open {where} because it {detail}; only plain text files are read "
                        "there. Start this memory afresh to remove it.") from err


def _sizes(folder: Path) -> dict[str, int]:
    """Sizes of the plain files in the ``people`` folder (nothing when it is missing or not a real folder)."""
    sizes: dict[str, int] = {}
    try:
        with MountedDir.open(folder.parent) as top, top.subdir(folder.name) as where:
            for name in _names(where):
                info = where.lstat(name)
                if info is not None and stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
                    sizes[name] = info.st_size
    except (FileNotFoundError, UnsafePath, NotADirectoryError):
        return {}
    return sizes


def _names(folder: MountedDir) -> list[str]:
    """The visible ``.md`` entries, listed by descriptor (the folder's path is never resolved again)."""
    return [n for n in os.listdir(folder.fd) if n.endswith(".md") and not n.startswith(".")]  # noqa: PTH208


def _memory(agent_id: str, user_id: str, name: str, path: Path, data: bytes) -> PersonMemory:
    text, lossy = memory_text.decode(data)
    return PersonMemory(agent_id=agent_id, user_id=user_id, name=name, path=str(path), text=text, bytes=len(data),
                        version=memory_text.version(data), max_bytes=MAX_BYTES, prompt_chars=MAX_FILE_CHARS,
                        cut_in_prompt=memory_text.cut_in_prompt(text), lossy=lossy)


__all__ = ["MAX_BYTES", "AgentPeople", "PersonEntry", "PersonMemory", "get", "list_for_agent", "put", "start_afresh"]
