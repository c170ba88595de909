"""The agent's markdown as Telegram HTML: always accepted by Telegram's parser, never longer than the source, and
code blocks cut by a split still render as code.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nanoclaw_app.channels.telegram.formatting import balance_fences, to_html
from nanoclaw_app.channels.telegram.outbound import plan
from nanoclaw_app.core.messages import OutgoingFile
from tests.fakes.telegram_api import visible_text

MARKDOWN_BITS = st.sampled_from(["**", "*", "_", "__", "~~", "||", "`", "```", "```py\n", "\n", "\n\n", "# ", "> ",
                                 "- ", "[", "](", ")", "https://x.org/?a=1&b=2", "<", ">", "&", "&amp;", "<b>", "\"",
                                 "word", " ", "é", "😀"])


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(st.lists(st.one_of(MARKDOWN_BITS, st.text(max_size=5)), max_size=40).map("".join))
def test_any_text_becomes_markup_telegram_accepts_and_no_longer_than_the_source(text: str) -> None:
    shown = visible_text(to_html(text))  # raises like Telegram's "can't parse entities"
    assert len(shown) <= len(text.replace("\x00", ""))


def test_common_markdown_is_formatted() -> None:
    assert to_html("# Plan\n- **buy** milk\n- call _Ann_\n> note `a<b`") == (
        "<b>Plan</b>\n• <b>buy</b> milk\n• call <i>Ann</i>\n<blockquote>note <code>a&lt;b</code></blockquote>")
    assert to_html("```python\nif a < b:\n    pass\n```") == (
        '<pre><code class="language-python">if a &lt; b:\n    pass</code></pre>')
    assert to_html("snake_case_name stays") == "snake_case_name stays"
    assert to_html("[site](javascript:alert(1))") == "site (javascript:alert(1))"


def test_crossed_markup_is_sent_as_escaped_text_rather_than_refused() -> None:
    assert to_html("**a *b** c* <x>") == "**a *b** c* &lt;x&gt;"


def test_a_code_block_cut_by_the_split_is_closed_and_reopened() -> None:
    assert balance_fences(["intro\n```py\nline 1", "line 2\n```\nafter"]) == [
        "intro\n```py\nline 1\n```", "```py\nline 2\n```\nafter"]


def test_files_ride_on_the_first_part_and_long_first_parts_go_before_them() -> None:
    report = OutgoingFile("r.csv", b"a,b")
    assert plan("short", [report]) == [("file", "short", report)]
    long_first = "x" * 2000
    assert plan(long_first, [report]) == [("text", long_first, None), ("file", "", report)]
    assert plan("", [report, report]) == [("file", "", report), ("file", "", report)]
