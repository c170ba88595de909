"""Agents write Markdown; WhatsApp has its own marks. This turns one into the other so replies look right on a phone.

WhatsApp: ``*bold*``, ``_italic_``, ``~strike~``, ```` ```monospace``` ````, `` `inline code` ``, ``- lists``,
``1. lists`` and ``> quotes``. Markdown's ``**bold**``/``__bold__`` become ``*bold*``, ``*italic*`` becomes
``_italic_``, ``~~strike~~`` becomes ``~strike~``, headings become bold lines and ``[text](url)`` becomes
``text (url)``. Code (fenced blocks and inline spans) is left exactly as written.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_BOLD_ITALIC = re.compile(r"\*\*\*(?=\S)(.+?)(?<=\S)\*\*\*")
_BOLD_STARS = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_BOLD_UNDERSCORES = re.compile(r"(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)")
_ITALIC_STAR = re.compile(r"(?<![*\w])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_BULLET_STAR = re.compile(r"^([ \t]*)[*+][ \t]+", re.M)
_RULE = re.compile(r"^[ \t]*([-*_])(?:[ \t]*\1){2,}[ \t]*$", re.M)

_BOLD = "\ue000"
"""A private-use character standing for a bold mark while italics are converted (so ``*bold*`` stays bold)."""
_CODE = "\ue001"
"""Marks a protected code span: ``\\ue001<index>\\ue001``."""


def to_whatsapp(text: str) -> str:
    """Convert an agent's Markdown to WhatsApp formatting; text without Markdown comes back unchanged."""
    protected: list[str] = []

    def protect(match: re.Match[str]) -> str:
        protected.append(match.group(0))
        return f"{_CODE}{len(protected) - 1}{_CODE}"

    out = _FENCE.sub(protect, text)
    out = _INLINE_CODE.sub(protect, out)
    out = _RULE.sub("──────────", out)
    out = _HEADING.sub(lambda m: f"{_BOLD}{_strip_marks(m.group(1))}{_BOLD}", out)
    out = _IMAGE.sub(lambda m: _link(m.group(1), m.group(2)), out)
    out = _LINK.sub(lambda m: _link(m.group(1), m.group(2)), out)
    out = _BULLET_STAR.sub(r"\1- ", out)
    out = _BOLD_ITALIC.sub(lambda m: f"{_BOLD}_{m.group(1)}_{_BOLD}", out)
    out = _BOLD_STARS.sub(lambda m: f"{_BOLD}{m.group(1)}{_BOLD}", out)
    out = _BOLD_UNDERSCORES.sub(lambda m: f"{_BOLD}{m.group(1)}{_BOLD}", out)
    out = _ITALIC_STAR.sub(r"_\1_", out)
    out = _STRIKE.sub(r"~\1~", out)
    out = out.replace(_BOLD, "*")
    return re.sub(f"{_CODE}(\\d+){_CODE}", lambda m: protected[int(m.group(1))], out)


def _link(label: str, url: str) -> str:
    label = label.strip()
    if not label or label == url or label.rstrip("/") == url.rstrip("/"):
        return url
    return f"{label} ({url})"


def _strip_marks(text: str) -> str:
    """A heading's text without its own bold marks (the whole line becomes bold)."""
    return re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
