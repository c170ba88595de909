"""Cards on Slack are Block Kit buttons: a click answers the agent's question or an approval, and the card then shows
the choice instead of the buttons.
"""

from __future__ import annotations

import json
from typing import Any

from agent_runner.protocol import AskQuestionOut, QuestionOption
from nanoclaw_app.core import pairing
from nanoclaw_app.core.access import can_access
from nanoclaw_app.core.messages import OutboundMessage
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.db import messaging, questions
from nanoclaw_app.host import Host
from tests.channels.slack.conftest import dm_session, say, texts
from tests.fakes.container import write_out
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_workspace import BOT, GENERAL, OWNER, OWNER_DM, STRANGER
from tests.waiting import until


def buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, action id) of a message's buttons, in order."""
    return [(e["text"]["text"], e["action_id"]) for b in message.get("blocks") or [] if b["type"] == "actions"
            for e in b["elements"]]


async def card_in(slack: FakeSlack, channel: str, title: str) -> dict[str, Any]:
    """Wait for the bot's card with ``title`` (and buttons) in a conversation."""
    found: dict[str, Any] = await slack.wait_for(lambda: next(
        (m for m in slack.sent_messages(channel) if m["text"].startswith(title) and m["blocks"]), None))
    return found


async def _card_recorded(host: Host) -> bool:
    return any(a.platform_message_id for a in await approvals_db.list_sender_approvals(host.db))


def shown(slack: FakeSlack, channel: str, ts: str) -> dict[str, Any]:
    return next(m for m in slack.sent_messages(channel) if m["ts"] == ts)


async def test_clicking_an_option_answers_the_agents_question_and_the_card_shows_the_choice(
    paired: Host, slack: FakeSlack, agent_id: str
) -> None:
    await say(slack, "plan lunch")
    _, folder = await dm_session(paired, agent_id)
    question = AskQuestionOut(question_id="q-lunch", title="Lunch", question="Pizza or soup today?",
                              options=[{"label": "Pizza", "value": "pizza"},
                                       {"label": "Soup", "value": "soup", "selected_label": "Soup it is"}])
    write_out(folder, question.to_json(), channel_type="slack", platform_id=OWNER_DM)

    card = await card_in(slack, OWNER_DM, "Lunch")
    assert card["text"] == "Lunch\n\nPizza or soup today?"  # top-level text for notifications
    assert [label for label, _ in buttons(card)] == ["Pizza", "Soup"]

    slack.push_block_action(card["ts"], OWNER_DM, buttons(card)[1][1])
    await slack.wait_for(lambda: not shown(slack, OWNER_DM, card["ts"])["blocks"])
    assert shown(slack, OWNER_DM, card["ts"])["text"] == "*Lunch*\n\n✓ Soup it is"
    stored = await questions.get(paired.db, "q-lunch")
    assert stored is not None
    assert stored.answered_at is not None
    answer = await paired.store.read(
        folder, lambda conn: conn.execute("SELECT content FROM messages_in WHERE id = 'q-lunch:answer'").fetchone(),
        with_outbound=False)
    assert json.loads(answer[0])["selected_option"] == "soup"
    assert json.loads(answer[0])["user_id"] == f"slack:{OWNER.id}"
    assert all(a.acked for a in slack.envelopes if a.type == "interactive")


async def test_clicks_on_cards_we_do_not_know_or_forged_ones_do_nothing(paired: Host, slack: FakeSlack) -> None:
    adapter = paired.channels.get("slack")
    assert adapter is not None
    await adapter.deliver(OWNER_DM, None, OutboundMessage(
        kind="question", delivery_id="q1", question_id="q-x", title="Pick", text="Which?",
        options=(QuestionOption("A", "a"), QuestionOption("B", "b"))))
    card = await card_in(slack, OWNER_DM, "Pick")
    other = await adapter.deliver(GENERAL, None, OutboundMessage(  # the same buttons shown elsewhere (a forgery)
        kind="card", delivery_id="c1", title="Fake", text="x"))
    assert other is not None
    slack.messages[(GENERAL, other)]["blocks"] = slack.messages[(OWNER_DM, card["ts"])]["blocks"]
    slack.push_block_action(other, GENERAL, buttons(card)[0][1], user=STRANGER)
    slack.push_block_action(card["ts"], OWNER_DM, buttons(card)[1][1], value="999")  # a forged value is ignored
    await slack.wait_for(lambda: len(slack.ephemeral) >= 1 and not shown(slack, OWNER_DM, card["ts"])["blocks"])
    assert slack.ephemeral[0]["text"] == "This card is no longer active"
    assert shown(slack, OWNER_DM, card["ts"])["text"] == "*Pick*\n\n✓ B"


async def test_a_display_card_has_link_buttons_and_top_level_text(paired: Host, slack: FakeSlack) -> None:
    adapter = paired.channels.get("slack")
    assert adapter is not None
    await adapter.deliver(OWNER_DM, None, OutboundMessage(
        kind="card", delivery_id="card-1", title="Flight LH 123", text="Departs **08:40** from gate A12",
        links=({"label": "Check in", "url": "https://example.com/checkin"}, {"label": "Seat map", "url": "ftp://x"})))
    card = await card_in(slack, OWNER_DM, "Flight LH 123")
    assert card["text"] == "Flight LH 123\n\nDeparts **08:40** from gate A12\nSeat map: ftp://x"
    links = [e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(e["text"]["text"], e["url"]) for e in links] == [("Check in", "https://example.com/checkin")]


async def test_a_stranger_is_allowed_from_the_owners_dm_and_their_held_message_is_answered(
    paired: Host, slack: FakeSlack, agent_id: str
) -> None:
    code = await pairing.create_code(paired.db, "slack", intent=f"wire:{agent_id}")
    slack.push_app_mention(GENERAL, OWNER, code.code)
    await slack.wait_for(lambda: any(t.startswith("Paired!") for t in texts(slack, GENERAL)))
    chat = await messaging.find(paired.db, "slack", GENERAL)
    assert chat is not None
    await messaging.update(paired.db, chat.id, unknown_sender_policy="request_approval")

    asked = slack.push_app_mention(GENERAL, STRANGER, "can you help with my homework?")
    card = await card_in(slack, OWNER_DM, "👤 New sender")
    assert "Sam" in card["text"]
    assert [label for label, _ in buttons(card)] == ["Allow", "Deny"]
    assert not texts(slack, GENERAL, asked["ts"])  # held until Ann decides
    await until(lambda: _card_recorded(paired))  # the host knows which message to write the outcome on

    slack.push_block_action(card["ts"], OWNER_DM, buttons(card)[0][1])
    await slack.wait_for(lambda: f"echo: @{BOT.name} can you help with my homework?" in texts(slack, GENERAL,
                                                                                           asked["ts"]))
    outcome = shown(slack, OWNER_DM, card["ts"])
    assert "allowed by Ann Koch" in outcome["text"]  # the host's outcome, not overwritten
    assert not outcome["blocks"]
    assert (await can_access(paired.db, f"slack:{STRANGER.id}", agent_id)).reason == "member"
    assert await approvals_db.list_sender_approvals(paired.db) == []


async def test_an_agents_approval_request_is_approved_from_the_owners_dm(
    paired: Host, slack: FakeSlack, agent_id: str
) -> None:
    await say(slack, "add my notes server")
    session, _ = await dm_session(paired, agent_id)
    approval_id = await paired.approvals.request_approval(
        session=session, action="add_mcp_server", payload={"name": "notes", "command": "notes-mcp"},
        title="Add an MCP server", question="Nano wants to add the MCP server “notes” (notes-mcp). Allow it?")
    assert approval_id is not None
    card = await card_in(slack, OWNER_DM, "Add an MCP server")
    assert [label for label, _ in buttons(card)] == ["Approve", "Reject"]
    slack.push_block_action(card["ts"], OWNER_DM, buttons(card)[0][1])
    await slack.wait_for(lambda: "Approved" in shown(slack, OWNER_DM, card["ts"])["text"])
    from nanoclaw_app.db import agents

    async def applied() -> bool:
        config = await agents.get_config(paired.db, agent_id)
        return config is not None and "notes" in json.loads(config.mcp_servers)

    await until(applied)  # the approval's action runs after the card shows the decision
