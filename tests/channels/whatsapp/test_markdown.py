"""Agents write Markdown; WhatsApp shows its own marks."""

from __future__ import annotations

import pytest

from nanoclaw_app.channels.whatsapp.markdown import to_whatsapp


@pytest.mark.parametrize(("markdown", "whatsapp"), [
    ("**bold** and __bold__", "*bold* and *bold*"),
    ("*italic* and _italic_", "_italic_ and _italic_"),
    ("***both***", "*_both_*"),
    ("**a *b* c**", "*a _b_ c*"),
    ("~~gone~~", "~gone~"),
    ("# Title\n## Sub **title**", "*Title*\n*Sub title*"),
    ("see [the docs](https://x.y/z)", "see the docs (https://x.y/z)"),
    ("[https://a.b](https://a.b) ![chart](https://c.d/p.png)", "https://a.b chart (https://c.d/p.png)"),
    ("- one\n* two\n+ three\n1. four\n  - nested", "- one\n- two\n- three\n1. four\n  - nested"),
    ("> a *quote*", "> a _quote_"),
    ("---", "──────────"),
    ("2 * 3 * 4 and a*b", "2 * 3 * 4 and a*b"),
    ("plain text stays plain.", "plain text stays plain."),
])
def test_markdown_becomes_whatsapp_formatting(markdown: str, whatsapp: str) -> None:
    assert to_whatsapp(markdown) == whatsapp


def test_code_is_left_exactly_as_written() -> None:
    source = "Run `rm **/*.tmp` then:\n```python\nx = a * b * c  # **not bold**\n```\nand **done**"
    assert to_whatsapp(source) == (
        "Run `rm **/*.tmp` then:\n```python\nx = a * b * c  # **not bold**\n```\nand *done*"
    )
