"""The agent's markdown as Telegram HTML, with every ``<``, ``>`` and ``&`` of the text escaped.

HTML is the parse mode where escaping is simple and total (Telegram's MarkdownV2 needs 18 characters escaped and
fails on any slip). Bold, italic, strikethrough, spoilers, inline code, fenced code blocks, links, headings, quotes
and bullets are converted; everything else is text. If the result would not nest properly (markdown like
``**a *b** c*``), the chunk is sent escaped without formatting rather than risking a refusal; and if Telegram still
refuses the entities, the sender resends the chunk as plain text (see ``outbound``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

PARSE_MODE = "HTML"

_FENCE = re.compile(r"^\s*(```|~~~)\s*([\w+#.-]*)\s*$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_QUOTE = re.compile(r"^\s{0,3}>\s?(.*)$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(?=\S)")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_CODE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\[([^\]\n]+)\]\(\s*([^)\s]+)\s*\)")
_SAFE_SCHEME = re.compile(r"^(https?://|tg://|mailto:)", re.IGNORECASE)
_INLINE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*"), "b"),
    (re.compile(r"(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)"), "b"),
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), "s"),
    (re.compile(r"\|\|(?=\S)(.+?)(?<=\S)\|\|"), "tg-spoiler"),
    (re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])"), "i"),
    (re.compile(r"(?<![\w_])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![\w_])"), "i"),
)
_TAG = re.compile(r"<(/?)([a-z-]+)[^>]*>")
_SLOT = re.compile(r"\x00(\d+)\x00")


def escape(text: str) -> str:
    """Text as Telegram HTML shows it literally."""
    return html.escape(text, quote=False)


def to_html(markdown: str) -> str:
    """Convert the agent's markdown to Telegram HTML; the visible text is never longer than ``markdown``."""
    converted = _convert(markdown.replace("\x00", ""))
    return converted if is_balanced(converted) else escape(markdown)


def is_balanced(markup: str) -> bool:
    """Whether every tag is closed in order (Telegram refuses crossed or unclosed tags)."""
    stack: list[str] = []
    for match in _TAG.finditer(markup):
        closing, name = match.group(1), match.group(2)
        if not closing:
            stack.append(name)
        elif not stack or stack.pop() != name:
            return False
    return not stack


def balance_fences(chunks: list[str]) -> list[str]:
    """Close a code block a split cut through and reopen it in the next chunk, so both render as code."""
    result: list[str] = []
    reopen = ""
    for chunk in chunks:
        text = reopen + chunk
        reopen = ""
        open_fence: str | None = None
        for line in text.split("\n"):
            match = _FENCE.match(line)
            if match:
                open_fence = None if open_fence is not None else line.strip()
        if open_fence is not None:
            text += "\n```"
            reopen = open_fence + "\n"
        result.append(text)
    return result


def _convert(markdown: str) -> str:
    out: list[str] = []
    lines = markdown.split("\n")
    quote: list[str] = []

    def flush_quote() -> None:
        if quote:
            out.append("<blockquote>" + "\n".join(quote) + "</blockquote>")
            quote.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            flush_quote()
            marker, lang = fence.group(1), fence.group(2)
            body: list[str] = []
            i += 1
            while i < len(lines) and lines[i].strip() != marker:
                body.append(lines[i])
                i += 1
            i += 1  # the closing fence (or the end of the text)
            code = escape("\n".join(body))
            out.append(f'<pre><code class="language-{escape(lang)}">{code}</code></pre>' if lang
                       else f"<pre>{code}</pre>")
            continue
        quoted = _QUOTE.match(line)
        if quoted:
            quote.append(_inline(quoted.group(1)))
            i += 1
            continue
        flush_quote()
        out.append(_line(line))
        i += 1
    flush_quote()
    return "\n".join(out)


def _line(line: str) -> str:
    heading = _HEADING.match(line)
    if heading:
        return f"<b>{_inline(heading.group(1))}</b>"
    if _RULE.match(line):
        return "———"
    bullet = _BULLET.match(line)
    if bullet:
        return bullet.group(1) + "• " + _inline(line[bullet.end():])
    return _inline(line)


def _inline(text: str) -> str:
    slots: list[str] = []

    def keep(markup: str) -> str:
        slots.append(markup)
        return f"\x00{len(slots) - 1}\x00"

    text = _CODE.sub(lambda m: keep(f"<code>{escape(m.group(1))}</code>"), text)
    text = _LINK.sub(lambda m: keep(_link(m.group(1), m.group(2))), text)
    text = escape(text)
    for pattern, tag in _INLINE:
        text = pattern.sub(_wrap(tag), text)
    return _SLOT.sub(lambda m: slots[int(m.group(1))], text)


def _wrap(tag: str) -> Callable[[re.Match[str]], str]:
    return lambda m: f"<{tag}>{m.group(1)}</{tag}>"


def _link(label: str, url: str) -> str:
    if not _SAFE_SCHEME.match(url):
        return escape(f"{label} ({url})")
    return f'<a href="{html.escape(url, quote=True)}">{escape(label)}</a>'
