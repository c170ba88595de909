"""Archiving a Claude Code transcript as readable Markdown before compaction replaces it with a summary."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

_TAG = re.compile(r"<[^>]+>")
_FIRST_MESSAGE = re.compile(r"<message\b[^>]*>(.*?)</message>", re.DOTALL)


def archive_transcript(
    transcript: Path, folder: Path, now: datetime, *, assistant_name: str = "Assistant"
) -> Path | None:
    """Write the user/assistant text of a Claude Code transcript to ``folder/<date>-<slug>.md``.

    Compaction replaces the history with a summary; the archive keeps the full wording where the agent (and the user)
    can still read it. Tool calls and their results are left out, and so are turns the conversation no longer holds.
    Returns None when there was nothing to keep.
    """
    entries: list[dict[str, Any]] = []
    with transcript.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
    turns = [turn for entry in _live_branch(entries) if (turn := _turn(entry)) is not None]
    if not turns:
        return None
    first_user = next((text for role, text in turns if role == "user"), "")
    folder.mkdir(parents=True, exist_ok=True)
    path = _free_path(folder, f"{now:%Y-%m-%d}-{_slug(first_user)}")
    names = {"user": "User", "assistant": assistant_name}
    body = "\n\n".join(f"**{names[role]}**: {text}" for role, text in turns)
    path.write_text(f"# Conversation archived {now:%Y-%m-%d %H:%M %Z}\n\n{body}\n", encoding="utf-8")
    return path


def _live_branch(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries the conversation holds: from its newest message back along ``parentUuid`` (across compactions).

    A session resumed at an earlier turn (``ResumePoint``) continues from there, leaving the turns a crash cut off in
    the file on a dead branch; their messages were retried in the live one and must not be archived twice. A
    transcript without links is taken whole.
    """
    by_id = {entry["uuid"]: entry for entry in entries if isinstance(entry.get("uuid"), str)}
    leaves = [
        entry for entry in by_id.values() if entry.get("type") in ("user", "assistant") and not entry.get("isSidechain")
    ]
    if not leaves:
        return entries
    branch: list[dict[str, Any]] = []
    current: dict[str, Any] | None = leaves[-1]
    while current is not None and len(branch) < len(by_id):  # the bound also ends a (damaged) loop of links
        branch.append(current)
        current = by_id.get(current.get("parentUuid") or current.get("logicalParentUuid") or "")
    return branch[::-1]


def _turn(entry: Any) -> tuple[str, str] | None:
    if not isinstance(entry, dict) or entry.get("type") not in ("user", "assistant"):
        return None
    if entry.get("isMeta") or entry.get("isSidechain") or entry.get("isCompactSummary"):
        return None
    message = entry.get("message")
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
        return None
    content = message.get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = "\n".join(
            str(block.get("text", "")) for block in content if isinstance(block, dict) and block.get("type") == "text"
        )
    else:
        return None
    text = text.strip()
    if not text or text.startswith(("<local-command", "<command-")):
        return None
    return str(message["role"]), text


def _slug(text: str) -> str:
    found = _FIRST_MESSAGE.search(text)
    plain = _TAG.sub(" ", found.group(1) if found else text)
    words = re.findall(r"[a-z0-9]+", plain.lower())[:6]
    return "-".join(words)[:48].strip("-") or "conversation"


def _free_path(folder: Path, stem: str) -> Path:
    path = folder / f"{stem}.md"
    counter = 2
    while path.exists():
        path = folder / f"{stem}-{counter}.md"
        counter += 1
    return path
