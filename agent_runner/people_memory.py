"""Household memory: whose private memory file a conversation may load.

An agent shared by several people (a family chat, or several people's DMs wired to one agent) keeps one shared memory
file everyone's conversations load (``MEMORY.md``) and one private file per person (``people/<key>.md``). A person's
file is loaded only while that person is part of the conversation being answered: they sent one of the messages in
the batch, or the batch answers their DM (a reminder firing in it). So a fact A told the agent privately is not in the
prompt the agent answers B with. The host's People page edits the same files, naming them with :func:`person_file`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from agent_runner.formatter import SYSTEM_SENDER, escape
from agent_runner.protocol import AGENT_CHANNEL, ChatContent, ContractError, InboundRow, MessageKind

log = logging.getLogger(__name__)

PEOPLE_DIR = "people"
"""The folder of private memory files, inside the agent folder."""
_KEEP = frozenset(string.ascii_letters + string.digits + "@.+-")
_MAX_KEY_BYTES = 180
"""Well under the 255-byte file name limit, leaving room for ``.md`` and the editor's temporary-file prefix."""


@dataclass(frozen=True, slots=True)
class Person:
    """Someone in the conversation: their user id (``telegram:123``) and the name they were last seen with."""

    user_id: str
    name: str


def person_key(user_id: str) -> str:
    """A file-name-safe key for a user id, the same for every session of the agent and for the host.

    Readable for the usual ids (``telegram:123`` → ``telegram_123``) and one-to-one: ``:`` becomes ``_``, and every
    other character outside letters, digits and ``@.+-`` (``_`` included) becomes ``%XX`` of its UTF-8 bytes. A key
    never starts with a dot; a very long one is cut and given a hash of the whole id.
    """
    parts: list[str] = []
    for index, char in enumerate(user_id):
        if char == ":":
            parts.append("_")
        elif char in _KEEP and not (index == 0 and char == "."):
            parts.append(char)
        else:
            parts.append("".join(f"%{byte:02X}" for byte in char.encode("utf-8")))
    key = "".join(parts)
    if len(key.encode("utf-8")) > _MAX_KEY_BYTES:
        digest = hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:16]
        key = key[: _MAX_KEY_BYTES - 17] + "~" + digest
    return key or "%"


def person_file(user_id: str) -> str:
    """The person's memory file, relative to the agent folder: ``people/<key>.md``."""
    return f"{PEOPLE_DIR}/{person_key(user_id)}.md"


def _person_of(row: InboundRow) -> Person | None:
    """The person who sent a chat row; None for tasks, other agents, the host's notes and unreadable rows."""
    if row.kind != MessageKind.CHAT or row.channel_type == AGENT_CHANNEL:
        return None
    try:
        content = ChatContent.from_dict(json.loads(row.content))
    except (ValueError, ContractError):
        return None
    if not content.sender_id or content.sender_id == SYSTEM_SENDER:
        return None
    return Person(content.sender_id, content.sender_name or content.sender_id)


def dm_owner(newest_chat: InboundRow | None) -> Person | None:
    """The person a chat belongs to, judged by its newest message: its sender when that was a direct message."""
    if newest_chat is None:
        return None
    person = _person_of(newest_chat)
    if person is None:
        return None
    try:
        is_group = ChatContent.from_dict(json.loads(newest_chat.content)).is_group
    except (ValueError, ContractError):
        return None
    return None if is_group else person


def conversation_people(
    rows: Sequence[InboundRow], newest_chat: Callable[[str, str], InboundRow | None]
) -> list[Person]:
    """Everyone part of the conversation a batch starts, sorted by user id, each once (the newest name wins).

    They are the senders of its chat rows and the owner of the DM any other row (a task) answers in.

    ``newest_chat(channel_type, platform_id)`` reads the newest chat row of a chat from ``inbound.db``.
    """
    found: dict[str, Person] = {}
    for row in rows:
        person = _person_of(row)
        if person is None and row.kind != MessageKind.CHAT and row.channel_type and row.platform_id \
                and row.channel_type != AGENT_CHANNEL:
            person = dm_owner(newest_chat(row.channel_type, row.platform_id))
        if person is not None:
            found[person.user_id] = person
    return [found[key] for key in sorted(found)]


@dataclass(frozen=True, slots=True)
class Remembered:
    """A person in the conversation whose memory file holds something, and its text (cut to the prompt's limit)."""

    person: Person
    path: Path
    text: str


def _shown_name(person: Person) -> str:
    """The name on one line and short: it comes from the chat app, and the person chose it."""
    name = " ".join(person.name.split())[:80]
    return name or person.user_id


def _read(path: Path, max_chars: int) -> str:
    """The file's text, stripped and cut; empty when it is missing or not a regular file (a pipe would hang us)."""
    try:
        if not path.is_file():
            return ""
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError as err:
        log.warning("cannot read %s: %s", path, err)
        return ""
    if len(text) > max_chars:
        text = text[:max_chars] + f"\n[… cut here: the file is longer; read {path} for the rest]"
    return text


def remembered(agent_dir: Path, people: Sequence[Person], *, max_chars: int) -> list[Remembered]:
    """Those of ``people`` whose memory file holds something: the prompt loads exactly these files."""
    found: list[Remembered] = []
    for person in people:
        path = agent_dir / person_file(person.user_id)
        text = _read(path, max_chars)
        if text:
            found.append(Remembered(person, path, text))
    return found


def people_section(agent_dir: Path, loaded: Sequence[Remembered]) -> str:
    """The system prompt's section with the rules for private memory and the files of the people in the conversation.

    Only what is in their files varies; who is in the conversation (and where their files are) is told with the
    messages (:func:`people_note`), so a conversation whose people have no memory yet gets the same prompt as one
    started before its first message was known.
    """
    parts = [
        "## The people in this conversation\n"
        f"Each person you help has a private memory file in {agent_dir / PEOPLE_DIR}/, loaded only into conversations "
        "they are part of; the <people> list after the messages names each sender's file. Keep there what a person "
        "tells you about themselves or asks you to remember for them (preferences, health, feelings, plans, anything "
        "they may not want others to read); when unsure, treat it as private. Never tell one person what is in "
        "someone else's file, and never open another person's file to answer someone. In a group chat everyone "
        "reads your reply: bring up a person's private facts there only if they do first. Create a missing file with "
        "your file tools; write only to the files the <people> list names.",
    ]
    if not loaded:
        parts.append("Nobody in this conversation has private memory yet.")
    for item in loaded:
        parts.append(f"### {_shown_name(item.person)} ({item.person.user_id})\nTheir file is {item.path}. "
                     f"Its current contents:\n{item.text}")
    return "\n\n".join(parts)


def people_note(agent_dir: Path, people: Sequence[Person]) -> str:
    """The lines after a batch naming everyone in it and their memory file ("" when no person wrote)."""
    if not people:
        return ""
    lines = [f'<person id="{escape(p.user_id)}" name="{escape(_shown_name(p))}" '
             f'memory_file="{escape(str(agent_dir / person_file(p.user_id)))}" />' for p in people]
    return "\n".join(["<people>", *lines, "</people>"])


__all__ = [
    "PEOPLE_DIR", "Person", "Remembered", "conversation_people", "dm_owner", "people_note", "people_section",
    "person_file", "person_key", "remembered",
]
