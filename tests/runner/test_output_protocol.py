"""The ``<message to="name">`` protocol: what is sent, what stays a private scratchpad."""

from __future__ import annotations

from agent_runner.output import parse_output, strip_internal


def test_one_block_is_one_message() -> None:
    parsed = parse_output('<message to="family">See you at 6!</message>')
    assert parsed.blocks == [("family", "See you at 6!")]
    assert parsed.stray == ""
    assert parsed.wrapped_anything


def test_several_blocks_keep_their_order_and_recipients() -> None:
    parsed = parse_output(
        '<message to="a">one</message>\n<message to=\'b\'>two</message><message to="a">three</message>'
    )
    assert parsed.blocks == [("a", "one"), ("b", "two"), ("a", "three")]


def test_a_block_keeps_its_inner_lines_but_not_surrounding_whitespace() -> None:
    parsed = parse_output('<message to="family">\n  line one\n  line two\n</message>')
    assert parsed.blocks == [("family", "line one\n  line two")]


def test_text_outside_blocks_is_stray_and_not_sent() -> None:
    parsed = parse_output('Let me think.\n<message to="family">Done.</message>\nThat went well.')
    assert parsed.blocks == [("family", "Done.")]
    assert parsed.stray == "Let me think.\nThat went well."


def test_an_unwrapped_answer_sends_nothing() -> None:
    parsed = parse_output("Sure, see you at 6!")
    assert parsed.blocks == []
    assert not parsed.wrapped_anything
    assert parsed.stray == "Sure, see you at 6!"


def test_internal_sections_are_collected_and_never_sent() -> None:
    parsed = parse_output('<internal>the user seems busy</internal><message to="family">ok</message>')
    assert parsed.internal == ["the user seems busy"]
    assert parsed.blocks == [("family", "ok")]
    assert parsed.stray == ""


def test_a_block_quoted_inside_an_internal_note_is_not_sent() -> None:
    parsed = parse_output('<internal>draft: <message to="family">maybe</message></internal>')
    assert parsed.blocks == []


def test_an_internal_note_inside_a_block_is_cut_out_of_it() -> None:
    parsed = parse_output('<message to="family">Hi <internal>(she asked twice)</internal>there</message>')
    assert parsed.blocks == [("family", "Hi there")]


def test_an_unclosed_internal_note_hides_the_rest() -> None:
    parsed = parse_output('<message to="family">ok</message><internal>thinking about <message to="x">y')
    assert parsed.blocks == [("family", "ok")]
    assert parsed.stray == ""


def test_empty_blocks_and_nameless_blocks_are_ignored() -> None:
    assert parse_output('<message to="family">   </message><message to="">x</message>').blocks == []


def test_tags_are_case_insensitive_and_tolerate_spacing() -> None:
    assert parse_output('<Message  to = "family" >hi</MESSAGE>').blocks == [("family", "hi")]


# The original's stripInternalTags cases.


def test_strip_internal_single_line() -> None:
    assert strip_internal("hello <internal>secret</internal> world") == "hello  world"


def test_strip_internal_multi_line() -> None:
    assert strip_internal("hello <internal>\nsecret\nstuff\n</internal> world") == "hello  world"


def test_strip_internal_several_blocks() -> None:
    assert strip_internal("<internal>a</internal>hello<internal>b</internal>") == "hello"


def test_strip_internal_only_internal_is_empty() -> None:
    assert strip_internal("<internal>only this</internal>") == ""


def test_strip_internal_without_tags_is_unchanged() -> None:
    assert strip_internal("hello world") == "hello world"


def test_strip_internal_keeps_what_follows() -> None:
    assert strip_internal("<internal>thinking</internal>The answer is 42") == "The answer is 42"
