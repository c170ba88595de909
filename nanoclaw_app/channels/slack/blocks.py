"""Block Kit for question cards and display cards, and the short action ids their buttons carry.

A question button's ``action_id`` is ``c:<card id>:<option index>`` (the card row in the central database holds the
question and the real option values), so a click cannot name an option it was not shown and the ids stay far under
Slack's 255 characters whatever the question id is. Slack refuses a whole message for one bad block, so every limit
(75-character labels, 3000-character sections, 25 buttons per row, 50 blocks) is kept here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from agent_runner.protocol import QuestionOption
from nanoclaw_app.channels.slack.formatting import escape, to_mrkdwn

SECTION_LIMIT = 3000
LABEL_LIMIT = 75
BUTTONS_PER_ROW = 25
MAX_BUTTONS = 45
"""Beyond this a card would pass Slack's 50 blocks; the agent's questions never come close."""
_ACTION = re.compile(r"c:(\d{1,18}):(\d{1,3})")
LINK_ACTION = "link"


def action_id(card_id: int, index: int) -> str:
    """The id of one option's button."""
    return f"c:{card_id}:{index}"


def parse_action(value: str | None) -> tuple[int, int] | None:
    """``(card id, option index)`` from a button's action id, or None for ids we never sent."""
    match = _ACTION.fullmatch(value or "")
    return None if match is None else (int(match.group(1)), int(match.group(2)))


def label(text: str) -> str:
    """A button label within Slack's limit."""
    text = " ".join(text.split()) or "…"
    return text if len(text) <= LABEL_LIMIT else text[: LABEL_LIMIT - 1] + "…"


def section(title: str, body: str) -> dict[str, Any]:
    """The card's text: the title in bold, then the body (already within the limit)."""
    parts = [f"*{escape(title)}*" if title else "", to_mrkdwn(body) if body else ""]
    text = "\n\n".join(p for p in parts if p) or "…"
    if len(text) > SECTION_LIMIT:
        text = text[: SECTION_LIMIT - 1] + "…"
    return {"type": "section", "block_id": "text", "text": {"type": "mrkdwn", "text": text}}


def question_blocks(card_id: int, title: str, body: str, options: Sequence[QuestionOption]) -> list[dict[str, Any]]:
    """The text, then the option buttons in rows of up to 25."""
    buttons = [{"type": "button", "action_id": action_id(card_id, i), "value": str(i),
                "text": {"type": "plain_text", "text": label(o.label)}} for i, o in enumerate(options[:MAX_BUTTONS])]
    rows = [{"type": "actions", "block_id": f"options-{n}", "elements": buttons[n: n + BUTTONS_PER_ROW]}
            for n in range(0, len(buttons), BUTTONS_PER_ROW)]
    return [section(title, body), *rows]


def link_blocks(title: str, body: str, links: Sequence[Mapping[str, str]]) -> tuple[list[dict[str, Any]], list[str]]:
    """A display card with URL buttons; links Slack would refuse (not a web address) come back as text lines."""
    buttons: list[dict[str, Any]] = []
    leftovers: list[str] = []
    for link in links:
        url = str(link.get("url") or "")
        name = str(link.get("label") or link.get("text") or link.get("title") or url)
        if url.startswith(("https://", "http://")) and len(url) <= 3000 and len(buttons) < BUTTONS_PER_ROW:
            buttons.append({"type": "button", "action_id": f"{LINK_ACTION}:{len(buttons)}", "url": url,
                            "text": {"type": "plain_text", "text": label(name)}})
        else:
            leftovers.append(f"{name}: {url}" if url and url != name else name)
    blocks: list[dict[str, Any]] = [section(title, "\n".join([body, *leftovers]).strip())]
    if buttons:
        blocks.append({"type": "actions", "block_id": "links", "elements": buttons})
    return blocks, leftovers


def fallback(title: str, body: str) -> str:
    """The top-level text Slack shows in notifications and where blocks cannot be shown."""
    return "\n\n".join(p for p in (title.strip(), body.strip()) if p) or "…"
