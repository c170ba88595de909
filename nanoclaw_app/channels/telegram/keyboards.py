"""Inline keyboards for question cards and display cards, and the short callback data their buttons carry.

A question button carries ``c:<card id>:<option index>`` (the card row in the central database holds the question
and the real option values), because Telegram allows at most 64 bytes of callback data whatever the question id is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from agent_runner.protocol import QuestionOption

if TYPE_CHECKING:
    from telegram import InlineKeyboardMarkup

MAX_CALLBACK_BYTES = 64
"""Telegram's limit on ``callback_data``."""
_DATA = re.compile(r"c:(\d{1,18}):(\d{1,3})")


def callback_data(card_id: int, index: int) -> str:
    """The data of one option's button; always within Telegram's 64-byte limit."""
    data = f"c:{card_id}:{index}"
    assert len(data.encode()) <= MAX_CALLBACK_BYTES, data
    return data


def parse_callback(data: str | None) -> tuple[int, int] | None:
    """``(card id, option index)`` from a button's data, or None for data we never sent."""
    match = _DATA.fullmatch(data or "")
    return None if match is None else (int(match.group(1)), int(match.group(2)))


def question_keyboard(card_id: int, options: Sequence[QuestionOption]) -> InlineKeyboardMarkup:
    """One button per row (labels stay readable on a phone), each answering with its option's index."""
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup

    rows = [[InlineKeyboardButton(_label(o.label), callback_data=callback_data(card_id, i))]
            for i, o in enumerate(options)]
    return InlineKeyboardMarkup(rows)


def link_keyboard(links: Sequence[Mapping[str, str]]) -> InlineKeyboardMarkup | None:
    """URL buttons for a display card; links without a web address are left out (Telegram would refuse them)."""
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup

    rows = []
    for link in links:
        url = str(link.get("url") or "")
        if not url.startswith(("https://", "http://", "tg://")):
            continue
        label = str(link.get("label") or link.get("text") or link.get("title") or url)
        rows.append([InlineKeyboardButton(_label(label), url=url)])
    return InlineKeyboardMarkup(rows) if rows else None


def _label(text: str) -> str:
    text = " ".join(text.split()) or "…"
    return text if len(text) <= 64 else text[:63] + "…"
