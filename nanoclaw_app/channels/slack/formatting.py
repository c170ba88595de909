"""Text between the agent's markdown and Slack's mrkdwn, both ways.

Out: ``&``, ``<`` and ``>`` are escaped (Slack would read ``<…>`` as a link or a mention, so an agent's text can never
ping ``@channel`` or hide a link), then the common markdown marks become Slack's (``**b**`` → ``*b*``, ``[t](u)`` →
``<u|t>``, ``# Title`` → ``*Title*``, ``~~s~~`` → ``~s~``); code keeps its text. In: Slack's markup becomes plain
text the agent can read (``<@U1>`` → ``@name``, ``<#C1|general>`` → ``#general``, ``<url|label>`` → ``label (url)``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![*\w])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^\s)]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
_MARK = "\x00"


def escape(text: str) -> str:
    """Slack's three control characters as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(markdown: str) -> str:
    """The agent's markdown as Slack mrkdwn, everything else shown as written."""
    kept: list[str] = []

    def keep(piece: str) -> str:
        kept.append(piece)
        return f"{_MARK}{len(kept) - 1}{_MARK}"

    text = _CODE.sub(lambda m: keep(escape(m.group(0))), markdown)
    text = escape(text)
    text = _LINK.sub(lambda m: keep(f"<{m.group(2).replace('|', '%7C')}|{m.group(1).replace('|', '/')}>"), text)
    text = _HEADING.sub(lambda m: f"{_MARK}B{m.group(1)}{_MARK}B", text)
    text = _ITALIC.sub(lambda m: f"_{m.group(1)}_", text)
    text = _BOLD.sub(lambda m: f"{_MARK}B{m.group(1) or m.group(2)}{_MARK}B", text)
    text = _STRIKE.sub(lambda m: f"~{m.group(1)}~", text)
    text = text.replace(f"{_MARK}B", "*")
    return re.sub(f"{_MARK}(\\d+){_MARK}", lambda m: kept[int(m.group(1))], text)


_ANGLE = re.compile(r"<([^<>\n]+)>")


def to_plain(text: str, name_of: Callable[[str], str | None]) -> str:
    """Slack's message markup as plain text; ``name_of(user_id)`` names a mentioned person when known."""

    def one(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            return "@" + (label or name_of(target[1:]) or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            return "@" + (label or target[1:].split("^")[0])
        if label and label != target:
            return f"{label} ({target})"
        return target.removeprefix("mailto:")

    plain = _ANGLE.sub(one, text)
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
