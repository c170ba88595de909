"""Buttons for question cards and display cards, and the short custom ids question buttons carry.

A question button carries ``c:<card id>:<option index>`` (the card row in the central database holds the question
and the real option values), so it stays far below Discord's 100-character limit whatever the question id is. The
views are built stopped: discord.py then does not keep them in memory waiting for clicks; the channel's interaction
handler answers every click from the database, which also works after a restart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import discord

from agent_runner.protocol import QuestionOption

MAX_CUSTOM_ID = 100
"""Discord's limit on a component's ``custom_id``."""
MAX_BUTTONS = 25
"""Five rows of five."""
LABEL_LIMIT = 80
_DATA = re.compile(r"c:(\d{1,18}):(\d{1,3})")


def custom_id(card_id: int, index: int) -> str:
    """The id of one option's button."""
    data = f"c:{card_id}:{index}"
    assert len(data) <= MAX_CUSTOM_ID, data
    return data


def parse_custom_id(data: object) -> tuple[int, int] | None:
    """``(card id, option index)`` from a button's id, or None for ids we never sent."""
    match = _DATA.fullmatch(data) if isinstance(data, str) else None
    return None if match is None else (int(match.group(1)), int(match.group(2)))


def label(text: str) -> str:
    """A button label Discord accepts (one line, at most 80 characters)."""
    text = " ".join(text.split()) or "…"
    return text if len(text) <= LABEL_LIMIT else text[: LABEL_LIMIT - 1] + "…"


def question_view(card_id: int, options: Sequence[QuestionOption]) -> discord.ui.View:
    """One button per option, five to a row, in order (the first is the primary one)."""
    view = discord.ui.View(timeout=None)
    for index, option in enumerate(options[:MAX_BUTTONS]):
        style = discord.ButtonStyle.primary if index == 0 else discord.ButtonStyle.secondary
        view.add_item(discord.ui.Button(label=label(option.label), custom_id=custom_id(card_id, index), style=style,
                                        row=index // 5))
    view.stop()
    return view


def link_view(links: Sequence[Mapping[str, str]]) -> discord.ui.View | None:
    """Link buttons for a display card; links without a web address are left out (Discord would refuse them)."""
    view = discord.ui.View(timeout=None)
    for link in links[:MAX_BUTTONS]:
        url = str(link.get("url") or "")
        if not url.startswith(("https://", "http://", "discord://")):
            continue
        text = str(link.get("label") or link.get("text") or link.get("title") or url)
        view.add_item(discord.ui.Button(label=label(text), url=url))
    view.stop()
    return view if view.children else None
