"""Long replies split where a reader expects; cards as numbered options; numbered answers parsed strictly."""

from __future__ import annotations

import pytest

from agent_runner.protocol import QuestionOption
from nanoclaw_app.channels.text import numbered_card, parse_choice, split_text


def test_short_text_is_one_chunk() -> None:
    assert split_text("hello", 4000) == ["hello"]
    assert split_text("", 4000) == [""]


def test_split_prefers_paragraphs_then_lines_then_words() -> None:
    para = "a" * 30
    text = f"{para}\n\n{para}\n\n{para}"
    assert split_text(text, 70) == [f"{para}\n\n{para}", para]

    lines = "\n".join(["b" * 20] * 5)
    assert split_text(lines, 45) == ["b" * 20 + "\n" + "b" * 20, "b" * 20 + "\n" + "b" * 20, "b" * 20]

    words = " ".join(["word"] * 20)
    chunks = split_text(words, 22)
    assert all(len(c) <= 22 for c in chunks)
    assert " ".join(chunks) == words


def test_a_word_longer_than_the_limit_is_cut_hard_and_nothing_is_lost() -> None:
    text = "x" * 95
    chunks = split_text(text, 40)
    assert [len(c) for c in chunks] == [40, 40, 15]
    assert "".join(chunks) == text


def test_every_chunk_respects_the_limit_on_mixed_text() -> None:
    text = ("Paragraph one is here.\nWith a second line that is fairly long indeed.\n\n" * 200).strip()
    chunks = split_text(text, 4000)
    assert len(chunks) > 1
    assert all(0 < len(c) <= 4000 for c in chunks)
    assert "".join(c.replace("\n", "").replace(" ", "") for c in chunks) == text.replace("\n", "").replace(" ", "")


def test_numbered_card_lists_options_with_a_hint() -> None:
    text = numbered_card("Lunch", "Pizza or soup?", [QuestionOption("Pizza", "p"), QuestionOption("Soup", "s")],
                         hint="Reply with the number of your choice.")
    assert text == "Lunch\nPizza or soup?\n\n1. Pizza\n2. Soup\n\nReply with the number of your choice."


@pytest.mark.parametrize(("text", "expected"), [
    ("1", 0), ("2", 1), (" 2. ", 1), ("2)", 1), ("3", None), ("0", None), ("two", None), ("1 please", None),
])
def test_parse_choice(text: str, expected: int | None) -> None:
    assert parse_choice(text, 2) == expected
