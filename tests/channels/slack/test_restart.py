"""Slack going away mid-conversation: replies wait and go out once it is back, messages sent meanwhile arrive —
nothing lost, nothing doubled — also when an ack is lost and Slack sends an event again.
"""

from __future__ import annotations

from agent_runner.protocol import TextOut
from nanoclaw_app.host import Host
from tests.channels.slack.conftest import dm_session, inbound_texts, next_event, say, texts, wait_status
from tests.fakes.container import write_out
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_workspace import OWNER, OWNER_DM


async def test_slack_restarting_mid_conversation_loses_and_doubles_nothing(
    paired: Host, slack: FakeSlack, agent_id: str
) -> None:
    await say(slack, "hello")
    _, folder = await dm_session(paired, agent_id)

    await slack.stop()
    down = await wait_status(paired, "reconnecting")
    assert down.retry_at is not None
    async with paired.events.subscribe() as events:
        write_out(folder, TextOut(text="written while Slack was away").to_json(), channel_type="slack",
                  platform_id=OWNER_DM)
        await next_event(events, ("delivery.waiting",))  # parked, not failed and not retried blindly
    slack.push_message(OWNER_DM, OWNER, "are you there?")  # Slack keeps it until the app is connected again

    await slack.start()
    await wait_status(paired, "connected")
    await slack.wait_for(lambda: "written while Slack was away" in texts(slack, OWNER_DM))
    await slack.wait_for(lambda: "echo: are you there?" in texts(slack, OWNER_DM))
    await say(slack, "still here")

    sent = texts(slack, OWNER_DM)
    for text in ("echo: hello", "written while Slack was away", "echo: are you there?", "echo: still here"):
        assert sent.count(text) == 1, (text, sent)
    assert await inbound_texts(paired, folder) == ["hello", "are you there?", "still here"]
    assert not slack.pending()


async def test_an_event_slack_sends_again_after_a_lost_ack_reaches_the_agent_once(
    paired: Host, slack: FakeSlack, agent_id: str
) -> None:
    slack.lose_next_acks(1)
    await say(slack, "did you get this?")
    await slack.stop()
    await slack.start()
    await slack.wait_for(lambda: not slack.pending())
    await say(slack, "and this?")
    redelivered = [e for e in slack.envelopes if len(e.envelope_ids) > 1]
    assert redelivered, "the fake should have sent the first event again"
    _, folder = await dm_session(paired, agent_id)
    assert await inbound_texts(paired, folder) == ["did you get this?", "and this?"]
    assert texts(slack, OWNER_DM).count("echo: did you get this?") == 1


async def test_a_refresh_request_from_slack_keeps_the_conversation_going(paired: Host, slack: FakeSlack) -> None:
    await slack.send_disconnect("refresh_requested")
    await slack.wait_for(lambda: slack.connections_opened >= 2 and slack.open_connections == 1)
    await say(slack, "after the refresh")
