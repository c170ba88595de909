"""An agent's memory file, as the owner reads and edits it.

The agent writes this file too, from inside its container, so the editor guards both ways: a version check keeps the
owner from overwriting what the agent learned meanwhile, and reads never follow a link or open a device the agent may
have planted in its workspace.
"""

from __future__ import annotations

import logging
import stat
from dataclasses import dataclass
from pathlib import Path

from agent_runner.prompt import MAX_FILE_CHARS
from nanoclaw_app.core.system_actions import MEMORY_FILE
from nanoclaw_app.errors import UnsafePath, UserError
from nanoclaw_app.services import memory_text
from nanoclaw_app.services.agents import lookup
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.sessions.mounted import MountedDir

log = logging.getLogger(__name__)

MEMORY_MAX_BYTES = 256 * 1024
"""The editor refuses more: the prompt shows only the first ``MAX_FILE_CHARS`` characters anyway."""


@dataclass
class Memory:
    """The agent's memory file. ``version`` guards against overwriting what the agent wrote meanwhile."""

    agent_id: str
    path: str
    text: str
    bytes: int
    version: str
    max_bytes: int
    prompt_chars: int
    """The prompt shows this many characters of the file; the agent reads the rest with its file tools."""
    cut_in_prompt: bool
    lossy: bool
    """The file held bytes that are not UTF-8; they show as U+FFFD, and saving writes those instead."""


async def get_memory(services: AppServices, agent_id: str) -> Memory:
    """The agent's memory file (empty if it has none yet)."""
    agent = await lookup.agent(services, agent_id)
    path = lookup.workspace(services, agent) / MEMORY_FILE
    data = await services.ctx.store.run_io(lambda: _read_memory(path))
    return _memory(agent.id, path, data)


async def put_memory(services: AppServices, agent_id: str, text: str, *, base_version: str | None = None) -> Memory:
    """Replace the memory file atomically (UTF-8, at most ``MEMORY_MAX_BYTES``).

    With ``base_version`` (from :func:`get_memory`), refuses when the file changed since: the agent edits its own
    memory, and a silent overwrite would lose what it learned.
    """
    agent = await lookup.agent(services, agent_id)
    data = memory_text.encode(text, MEMORY_MAX_BYTES)
    workspace = lookup.workspace(services, agent)
    path = workspace / MEMORY_FILE

    def write() -> bytes:
        # the read also refuses a planted link or device before anything is written
        current = memory_text.version(_read_memory(path))
        if base_version is not None and current != base_version:
            raise UserError("the memory changed since you opened it (the agent may have written to it); "
                            "reload to see the new text, then make your change again")
        atomic_write(path, data)
        return data

    written = await services.ctx.store.run_io(write)
    log.info("memory of agent %s saved by the owner (%d bytes)", agent.id, len(written))
    services.ctx.events.publish("agent.memory_saved", agent_group_id=agent.id, bytes=len(written))
    return _memory(agent.id, path, written)


def atomic_write(path: Path, data: bytes) -> None:
    """Write beside the file, flush to disk, then rename over it: a reader sees the old or the new text, never half.

    ``path`` is inside an agent's folder, which its containers can write: the new file is made and renamed by
    descriptor (:class:`MountedDir`), so a link planted at the name is replaced, never written through.
    """
    with MountedDir.open(path.parent, create=True) as folder:
        try:
            info = folder.lstat(path.name)
        except OSError:
            info = None
        mode = stat.S_IMODE(info.st_mode) if info is not None and stat.S_ISREG(info.st_mode) else 0o600
        folder.replace(path.name, data, mode=mode)


def _read_memory(path: Path) -> bytes:
    """The file's bytes; never follows a link or opens a device the agent may have planted in its workspace."""
    try:
        with MountedDir.open(path.parent) as folder:
            return folder.read_bytes(path.name, max_bytes=MEMORY_MAX_BYTES * 4)
    except FileNotFoundError:
        return b""
    except UnsafePath as err:
        detail = str(err).split(" is ", 1)[-1].replace("a symlink", "a symbolic link (a pointer to another file)")
        if "limit" in detail or "grew" in detail:
            raise UserError(f"{path} is too large to edit here; shorten it with a text editor") from err
        raise UserError(f"{path} is {detail}; NanoClaw does not follow links or open such files in a workspace. "
                        "Delete it and save the memory again") from err


def _memory(agent_id: str, path: Path, data: bytes) -> Memory:
    text, lossy = memory_text.decode(data)
    return Memory(agent_id=agent_id, path=str(path), text=text, bytes=len(data), version=memory_text.version(data),
                  max_bytes=MEMORY_MAX_BYTES, prompt_chars=MAX_FILE_CHARS,
                  cut_in_prompt=memory_text.cut_in_prompt(text), lossy=lossy)
