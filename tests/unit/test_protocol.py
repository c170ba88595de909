"""The wire contract: every shape round-trips, seq parity holds, malformed input is refused with a clear message."""

from __future__ import annotations

import json
import sqlite3

import pytest

from agent_runner.protocol import (
    INBOUND_SCHEMA,
    OUTBOUND_SCHEMA,
    PROTOCOL_VERSION,
    AskQuestionOut,
    Attachment,
    CardOut,
    ChatContent,
    ContractError,
    Destination,
    EditOut,
    InboundRow,
    OutboundRow,
    QuestionOption,
    QuestionResponse,
    ReactionOut,
    ReplyTo,
    SystemAction,
    TaskContent,
    TextOut,
    decode_inbound,
    decode_outbound,
    is_host_seq,
    next_container_seq,
    next_host_seq,
    row_from_mapping,
)

# --------------------------------------------------------------------------------------------- content round trips

SHAPES = [
    Attachment(name="photo.jpg", mime_type="image/jpeg", size=1234, local_path="inbox/m1/photo.jpg", kind="image"),
    ReplyTo(text="earlier", sender="Alice", message_id="tg-1"),
    ChatContent(text="hi", sender_id="telegram:42", sender_name="Alice",
                attachments=[{"name": "a.txt", "mime_type": "text/plain", "size": 3}],
                reply_to={"text": "earlier", "sender": "Bob"}, is_group=True, is_mention=True,
                platform_message_id="tg-2", extra={"from_me": False}),
    TaskContent(prompt="water the plants", script="test -f /srv/flag", script_output={"ok": True}),
    QuestionResponse(question_id="q-1", selected_option="yes", user_id="telegram:42"),
    TextOut(text="hello", files=["report.pdf"]),
    EditOut(message_seq=7, text="fixed"),
    ReactionOut(message_seq=4, emoji="thumbs_up"),
    QuestionOption(label="Yes", value="yes", selected_label="✅ Yes"),
    AskQuestionOut(question_id="q-1", title="Lunch?", question="Pizza?",
                   options=[{"label": "Yes", "value": "yes"}, {"label": "No", "value": "no"}]),
    CardOut(title="Weather", description="Sunny", links=[{"label": "More", "url": "https://x.test"}],
            fallback_text="Sunny"),
    SystemAction(action="schedule_task", payload={"prompt": "p"}, request_id="req-1"),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: type(s).__name__)
def test_every_content_shape_round_trips_through_json(shape):
    again = type(shape).from_dict(json.loads(shape.to_json()))
    assert again == shape


def test_unknown_keys_survive_a_round_trip_in_extra():
    data = {"text": "hi", "sender_id": "x", "fromMe": True, "isGroup": False}
    content = ChatContent.from_dict(data)
    assert content.extra == {"fromMe": True, "isGroup": False}
    assert json.loads(content.to_json())["fromMe"] is True


def test_typed_content_carries_its_type_tag():
    assert json.loads(EditOut(message_seq=1, text="x").to_json())["type"] == "edit"
    assert json.loads(SystemAction(action="a").to_json())["type"] == "action"
    assert "type" not in json.loads(TextOut(text="x").to_json())


def test_none_fields_are_left_out():
    assert json.loads(TaskContent(prompt="p").to_json()) == {"prompt": "p"}


def test_typed_accessors():
    chat = SHAPES[2]
    assert isinstance(chat, ChatContent)
    assert [a.name for a in chat.attachment_list] == ["a.txt"]
    question = SHAPES[9]
    assert isinstance(question, AskQuestionOut)
    assert [o.value for o in question.option_list] == ["yes", "no"]


# --------------------------------------------------------------------------------------------- decoding by kind


@pytest.mark.parametrize(("kind", "shape"), [
    ("chat", TextOut(text="hello")),
    ("chat", EditOut(message_seq=3, text="x")),
    ("chat", ReactionOut(message_seq=2, emoji="heart")),
    ("chat", AskQuestionOut(question_id="q", title="t", question="?", options=[{"label": "a", "value": "a"}])),
    ("chat", CardOut(title="c")),
    ("system", SystemAction(action="create_agent", payload={"name": "x"})),
])
def test_decode_outbound_picks_the_shape_by_kind_and_type(kind, shape):
    assert decode_outbound(kind, shape.to_json()) == shape


@pytest.mark.parametrize(("kind", "shape"), [
    ("chat", ChatContent(text="hi")),
    ("task", TaskContent(prompt="p")),
    ("system", QuestionResponse(question_id="q", selected_option="a")),
])
def test_decode_inbound_picks_the_shape_by_kind(kind, shape):
    assert decode_inbound(kind, shape.to_json()) == shape


def test_decode_accepts_bytes():
    assert decode_outbound("chat", b'{"text": "hi"}') == TextOut(text="hi")


# --------------------------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(("call", "message"), [
    (lambda: decode_outbound("chat", "{not json"), "not valid JSON"),
    (lambda: decode_outbound("chat", "[1, 2]"), "must be a JSON object"),
    (lambda: decode_outbound("chat", '{"type": "edit", "text": "x"}'), "EditOut"),
    (lambda: decode_outbound("chat", '{"type": "edit", "message_seq": "7", "text": "x"}'), "integer message_seq"),
    (lambda: decode_outbound("chat", '{"type": "reaction", "message_seq": 1.5, "emoji": "x"}'),
     "integer message_seq"),
    (lambda: decode_outbound("chat", '{"type": "ask_question", "question_id": "q", "title": "t", "question": "?",'
                                     ' "options": []}'), "needs options"),
    (lambda: decode_outbound("chat", '{"type": "ask_question", "question_id": "q", "title": "t", "question": "?",'
                                     ' "options": [{"label": "a"}]}'), "QuestionOption"),
    (lambda: decode_outbound("chat", '{"text": 5}'), "text must be a string"),
    (lambda: decode_outbound("chat", '{"text": "x", "files": ["a", 3]}'), "files must be a list"),
    (lambda: decode_outbound("chat", '{"type": "action", "action": "x"}'), "kind='system'"),
    (lambda: decode_outbound("system", '{"payload": {}}'), "SystemAction"),
    (lambda: decode_outbound("system", '{"action": "", "payload": {}}'), "needs a name"),
    (lambda: decode_outbound("system", '{"action": "x", "payload": []}'), "payload must be an object"),
    (lambda: decode_inbound("chat", '{"text": "x", "attachments": {}}'), "attachments must be a list"),
    (lambda: decode_inbound("chat", '{"text": "x", "attachments": [{"size": 1}]}'), "Attachment"),
    (lambda: decode_inbound("chat", '{"text": "x", "attachments": [{"name": ""}]}'), "non-empty name"),
    (lambda: decode_inbound("chat", '{"text": "x", "attachments": [{"name": "a", "size": "big"}]}'),
     "size must be an integer"),
    (lambda: decode_inbound("task", '{"script": "x"}'), "TaskContent"),
    (lambda: decode_inbound("task", '{"prompt": 3}'), "prompt must be a string"),
    (lambda: decode_inbound("system", '{"question_id": "q"}'), "QuestionResponse"),
    (lambda: decode_inbound("webhook", "{}"), "unknown inbound kind 'webhook'"),
    (lambda: ChatContent.from_dict("hi"), "must be a JSON object, got str"),
])
def test_malformed_content_raises_a_contract_error_that_says_what_is_wrong(call, message):
    with pytest.raises(ContractError, match=message):
        call()


def test_contract_error_is_a_value_error():
    assert issubclass(ContractError, ValueError)


# --------------------------------------------------------------------------------------------- seq parity


def test_host_seq_numbers_are_even_and_container_ones_odd():
    assert [is_host_seq(n) for n in (2, 3, 4, 5)] == [True, False, True, False]
    assert [next_host_seq(n) for n in (None, 0, 1, 2, 3, 10, 11)] == [2, 2, 2, 4, 4, 12, 12]
    assert [next_container_seq(n) for n in (None, 0, 1, 2, 3, 10, 11)] == [1, 1, 3, 3, 5, 11, 13]


def test_interleaved_seq_numbers_never_collide():
    host, container, seen = 0, 0, set()
    for step in range(20):
        if step % 3:
            host = next_host_seq(max(host, container))
            seen.add(host)
        else:
            container = next_container_seq(max(host, container))
            seen.add(container)
    assert len(seen) == 20


# --------------------------------------------------------------------------------------------- rows and schemas


@pytest.fixture
def dbs(tmp_path):
    inbound = sqlite3.connect(tmp_path / "inbound.db")
    outbound = sqlite3.connect(tmp_path / "outbound.db")
    for conn, schema in ((inbound, INBOUND_SCHEMA), (outbound, OUTBOUND_SCHEMA)):
        conn.row_factory = sqlite3.Row
        conn.executescript(schema)
    yield inbound, outbound
    inbound.close()
    outbound.close()


def test_rows_round_trip_through_the_schemas(dbs):
    inbound, outbound = dbs
    row_in = InboundRow(id="m1:ag", seq=2, kind="task", timestamp="2026-01-01T00:00:00.000Z",
                        content=TaskContent(prompt="p").to_json(), process_after="2026-01-02T00:00:00.000Z",
                        recurrence="0 9 * * *", series_id="m1:ag", tries=1, trigger=0, platform_id="chat",
                        channel_type="test", thread_id="t", source_session_id="sess-1", on_wake=1, hops=2)
    names = list(InboundRow.__dataclass_fields__)
    inbound.execute(f"INSERT INTO messages_in ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
                    [getattr(row_in, n) for n in names])
    assert row_from_mapping(InboundRow, inbound.execute("SELECT * FROM messages_in").fetchone()) == row_in

    row_out = OutboundRow(id="out-1", seq=3, kind="chat", timestamp="2026-01-01T00:00:00.000Z",
                          content=TextOut(text="x").to_json(), in_reply_to="m1:ag", deliver_after=None,
                          platform_id="chat", channel_type="test", thread_id=None)
    names = list(OutboundRow.__dataclass_fields__)
    outbound.execute(f"INSERT INTO messages_out ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
                     [getattr(row_out, n) for n in names])
    assert row_from_mapping(OutboundRow, outbound.execute("SELECT * FROM messages_out").fetchone()) == row_out

    dest = Destination(name="bob", display_name="Bob", type="agent", agent_group_id="ag-2")
    names = list(Destination.__dataclass_fields__)
    inbound.execute(f"INSERT INTO destinations ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
                    [getattr(dest, n) for n in names])
    assert row_from_mapping(Destination, inbound.execute("SELECT * FROM destinations").fetchone()) == dest


def test_row_from_mapping_ignores_unknown_columns():
    mapping = {"id": "o", "seq": 1, "kind": "chat", "timestamp": "t", "content": "{}", "future_column": 1}
    assert row_from_mapping(OutboundRow, mapping).id == "o"


def test_the_schemas_enforce_seq_parity(dbs):
    inbound, outbound = dbs
    with pytest.raises(sqlite3.IntegrityError):
        inbound.execute("INSERT INTO messages_in (id, seq, kind, timestamp, content)"
                        " VALUES ('a', 3, 'chat', 't', '{}')")
    with pytest.raises(sqlite3.IntegrityError):
        outbound.execute("INSERT INTO messages_out (id, seq, kind, timestamp, content)"
                         " VALUES ('a', 4, 'chat', 't', '{}')")


def test_protocol_version_is_a_positive_integer():
    assert isinstance(PROTOCOL_VERSION, int)
    assert PROTOCOL_VERSION >= 1


def test_a_json_true_is_not_accepted_as_a_message_seq() -> None:
    from agent_runner.protocol import ContractError, EditOut, ReactionOut

    with pytest.raises(ContractError, match="integer message_seq"):
        EditOut.from_dict({"type": "edit", "message_seq": True, "text": "x"})
    with pytest.raises(ContractError, match="integer message_seq"):
        ReactionOut.from_dict({"type": "reaction", "message_seq": False, "emoji": "thumbs_up"})
