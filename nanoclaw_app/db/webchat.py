"""Queries for ``webchat_messages``: the in-app chat's own record of what was said, both ways.

Edits and reactions are rows of their own pointing at their target (``target_id``), so history is append-only and a
message's current look is its row plus its changes. ``seq`` is SQLite's rowid: arrival order, also for paging.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import from_row, maybe

MESSAGE_KINDS = ("text", "question", "card")
"""Kinds shown as bubbles; ``edit`` and ``reaction`` rows only change one."""
CHANGE_KINDS = ("edit", "reaction")

_SELECT = "SELECT rowid AS seq, * FROM webchat_messages"


@dataclass(frozen=True, slots=True)
class WebchatRow:
    """One stored chat row (JSON columns left as text)."""

    seq: int
    id: str
    platform_id: str
    direction: str
    kind: str
    sender: str
    text: str
    files: str
    card: str | None
    target_id: str | None
    created_at: str


async def insert(
    db: Database,
    *,
    message_id: str,
    platform_id: str,
    direction: str,
    kind: str,
    created_at: str,
    sender: str = "",
    text: str = "",
    files: Sequence[dict[str, Any]] = (),
    card: dict[str, Any] | None = None,
    target_id: str | None = None,
) -> bool:
    """Store a row; False when a row with this id exists already (a repeated delivery)."""
    count = await db.execute(
        "INSERT INTO webchat_messages (id, platform_id, direction, kind, sender, text, files, card, target_id,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        (message_id, platform_id, direction, kind, sender, text, json.dumps(list(files), ensure_ascii=False),
         None if card is None else json.dumps(card, ensure_ascii=False), target_id, created_at),
    )
    return count > 0


async def get(db: Database, message_id: str) -> WebchatRow | None:
    """One row by id."""
    return maybe(WebchatRow, await db.fetchone(f"{_SELECT} WHERE id = ?", (message_id,)))


async def page(db: Database, platform_id: str, *, before_seq: int | None, limit: int) -> list[WebchatRow]:
    """Up to ``limit`` bubbles of a conversation older than ``before_seq`` (all when None), newest first."""
    marks = ", ".join("?" for _ in MESSAGE_KINDS)
    rows = await db.fetchall(
        f"{_SELECT} WHERE platform_id = ? AND kind IN ({marks}) AND rowid < ? ORDER BY rowid DESC LIMIT ?",
        (platform_id, *MESSAGE_KINDS, before_seq if before_seq is not None else 2**62, limit),
    )
    return [from_row(WebchatRow, r) for r in rows]


async def changes_for(db: Database, target_ids: Sequence[str]) -> list[WebchatRow]:
    """Edits, reactions and transcripts of the given messages, oldest first."""
    if not target_ids:
        return []
    marks = ", ".join("?" for _ in target_ids)
    rows = await db.fetchall(
        f"{_SELECT} WHERE target_id IN ({marks}) AND kind IN ('edit', 'reaction', 'transcript') ORDER BY rowid",
        tuple(target_ids),
    )
    return [from_row(WebchatRow, r) for r in rows]


async def find_card(db: Database, question_id: str) -> WebchatRow | None:
    """The newest bubble showing the card for ``question_id``."""
    row = await db.fetchone(
        f"{_SELECT} WHERE kind IN ('question', 'card') AND json_extract(card, '$.question_id') = ?"
        " ORDER BY rowid DESC LIMIT 1",
        (question_id,),
    )
    return maybe(WebchatRow, row)


async def set_card(db: Database, message_id: str, card: dict[str, Any]) -> None:
    """Replace a bubble's card (recording the chosen answer)."""
    await db.execute("UPDATE webchat_messages SET card = ? WHERE id = ?",
                     (json.dumps(card, ensure_ascii=False), message_id))
