"""The fake Slack against the real slack-bolt (AsyncApp + aiohttp Socket Mode) and slack-sdk.

Later channel tests rely on this fake behaving like Slack where the adapter would notice: tokens, Socket Mode acks and
redelivery, threads, buttons, edits, reactions, cold DMs, files both ways and a server restart.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_workspace import (
    APP_TOKEN,
    BOT,
    BOT_TOKEN,
    GENERAL,
    OWNER,
    OWNER_DM,
    STRANGER,
    STRANGER_DM,
)

WAIT = 15.0
BUTTONS: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": "Deploy now?"}},
           {"type": "actions", "elements": [
               {"type": "button", "action_id": "card:7:yes", "value": "yes",
                "text": {"type": "plain_text", "text": "Yes"}},
               {"type": "button", "action_id": "card:7:no", "value": "no",
                "text": {"type": "plain_text", "text": "No"}}]}]


@dataclass
class Bolt:
    """A connected bolt app whose handlers put what they receive on queues."""

    app: AsyncApp
    handler: AsyncSocketModeHandler
    events: asyncio.Queue[tuple[dict[str, Any], str | None]] = field(default_factory=asyncio.Queue)
    """``(body, x-slack-retry-num)`` of every message and app_mention event."""
    clicks: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)

    @property
    def client(self) -> AsyncWebClient:
        return self.app.client

    async def next_event(self) -> tuple[dict[str, Any], str | None]:
        return await asyncio.wait_for(self.events.get(), WAIT)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def bolt(slack: FakeSlack) -> AsyncIterator[Bolt]:
    app = AsyncApp(client=AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url))
    bolt = Bolt(app, AsyncSocketModeHandler(app, APP_TOKEN, ping_interval=1))

    async def on_event(body: dict[str, Any], request: AsyncBoltRequest) -> None:
        retry = request.headers.get("x-slack-retry-num")
        await bolt.events.put((body, retry[0] if retry else None))

    async def on_click(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await bolt.clicks.put(body)

    app.event("message")(on_event)
    app.event("app_mention")(on_event)
    app.action(re.compile(r"^card:"))(on_click)
    await bolt.handler.connect_async()  # type: ignore[no-untyped-call]
    try:
        yield bolt
    finally:
        await bolt.handler.close_async()  # type: ignore[no-untyped-call]


async def test_auth_test_names_the_bot_and_wrong_tokens_are_refused_cleanly(slack: FakeSlack) -> None:
    me = await AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url).auth_test()
    assert (me["user_id"], me["team"]) == (BOT.id, "Nano Test Team")
    for token, method, error in [("xoxb-not-ours", "auth.test", "invalid_auth"),
                                 (APP_TOKEN, "auth.test", "not_allowed_token_type"),
                                 (BOT_TOKEN, "apps.connections.open", "not_allowed_token_type")]:
        with pytest.raises(SlackApiError) as refused:
            await AsyncWebClient(token=token, base_url=slack.api_url).api_call(method)
        assert refused.value.response["error"] == error
    slack.revoke_bot_token()
    with pytest.raises(SlackApiError, match="token_revoked"):
        await AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url).auth_test()


async def test_a_dm_and_a_channel_message_reach_the_message_handler_once_each(slack: FakeSlack, bolt: Bolt) -> None:
    slack.push_message(OWNER_DM, OWNER, "hello in private")
    slack.push_message(GENERAL, STRANGER, "hello everyone")
    first, second = (await bolt.next_event())[0]["event"], (await bolt.next_event())[0]["event"]
    assert {(e["channel_type"], e["user"], e["text"]) for e in (first, second)} == {
        ("im", OWNER.id, "hello in private"), ("channel", STRANGER.id, "hello everyone")}
    await slack.wait_for(lambda: not slack.pending())
    assert len(slack.acks) == 2
    assert ("auth.test", {"team_id": "T0FAKETEAM"}) in slack.calls


async def test_the_bot_replies_in_the_thread_and_a_mention_arrives_as_its_own_event(
    slack: FakeSlack, bolt: Bolt
) -> None:
    asked = slack.push_message(GENERAL, OWNER, "what's the weather?")
    body, _ = await bolt.next_event()
    await bolt.client.chat_postMessage(channel=GENERAL, text="Sunny.", thread_ts=body["event"]["ts"])
    assert [(m["text"], m["thread_ts"]) for m in slack.sent_messages(GENERAL)] == [("Sunny.", asked["ts"])]

    slack.push_app_mention(GENERAL, OWNER, "and tomorrow?", thread_ts=asked["ts"])
    kinds = sorted([(await bolt.next_event())[0]["event"]["type"] for _ in range(2)])
    assert kinds == ["app_mention", "message"]
    mention = slack.envelopes[-1].payload["event"]
    assert (mention["text"], mention["thread_ts"]) == (f"<@{BOT.id}> and tomorrow?", asked["ts"])


async def test_a_button_click_reaches_the_action_handler_is_acked_and_the_card_is_edited(
    slack: FakeSlack, bolt: Bolt
) -> None:
    posted = await bolt.client.chat_postMessage(channel=OWNER_DM, text="Deploy now?", blocks=BUTTONS)
    click = slack.push_block_action(posted["ts"], OWNER_DM, "card:7:yes")
    body = await asyncio.wait_for(bolt.clicks.get(), WAIT)
    assert (body["actions"][0]["value"], body["user"]["id"], body["container"]["message_ts"]) == \
        ("yes", OWNER.id, posted["ts"])
    await slack.wait_for(lambda: slack.envelope_for(click).acked)

    await bolt.client.chat_update(channel=OWNER_DM, ts=posted["ts"], text="Deploy now? — answered: yes", blocks=[])
    [card] = slack.sent_messages(OWNER_DM)
    assert (card["text"], card["blocks"], card["edited"]) == ("Deploy now? — answered: yes", None, True)
    with pytest.raises(ValueError, match="no element"):
        slack.push_block_action(posted["ts"], OWNER_DM, "card:7:no")

    again = await bolt.client.chat_postMessage(channel=OWNER_DM, text="Deploy again?", blocks=BUTTONS)
    slack.push_block_action(again["ts"], OWNER_DM, "card:7:no", user=STRANGER)
    body = await asyncio.wait_for(bolt.clicks.get(), WAIT)
    assert body["user"]["id"] == STRANGER.id
    await AsyncWebhookClient(body["response_url"]).send(text="Only Ann can answer this.", replace_original=False)
    assert slack.ephemeral[-1]["text"] == "Only Ann can answer this."


async def test_slack_refuses_bad_blocks_rate_limits_and_injected_failures(slack: FakeSlack, bolt: Bolt) -> None:
    long_label = [{"type": "actions", "elements": [{"type": "button", "action_id": "a", "value": "v",
                                                    "text": {"type": "plain_text", "text": "x" * 76}}]}]
    with pytest.raises(SlackApiError) as refused:
        await bolt.client.chat_postMessage(channel=OWNER_DM, text="card", blocks=long_label)
    assert refused.value.response["error"] == "invalid_blocks"
    slack.rate_limit("chat.postMessage", retry_after=3)
    with pytest.raises(SlackApiError) as limited:
        await bolt.client.chat_postMessage(channel=OWNER_DM, text="hi")
    assert (limited.value.response.status_code, limited.value.response.headers["Retry-After"]) == (429, "3")
    slack.fail_next("chat.postMessage", "channel_not_found")
    with pytest.raises(SlackApiError, match="channel_not_found"):
        await bolt.client.chat_postMessage(channel=OWNER_DM, text="hi")
    await bolt.client.chat_postMessage(channel=OWNER_DM, text="hi")
    assert [m["text"] for m in slack.sent_messages(OWNER_DM)] == ["hi"]


async def test_reactions_cold_dms_and_lookups(slack: FakeSlack, bolt: Bolt) -> None:
    said = slack.push_message(OWNER_DM, OWNER, "thanks!")
    await bolt.client.reactions_add(channel=OWNER_DM, timestamp=said["ts"], name="eyes")
    with pytest.raises(SlackApiError, match="already_reacted"):
        await bolt.client.reactions_add(channel=OWNER_DM, timestamp=said["ts"], name="eyes")
    assert slack.reactions[(OWNER_DM, said["ts"])] == ["eyes"]

    assert (await bolt.client.conversations_open(users=STRANGER.id))["channel"]["id"] == STRANGER_DM
    newcomer = slack.add_user("U0NEWCOMR", "lee", "Lee Park")
    opened = await bolt.client.conversations_open(users=newcomer.id)
    dm = opened["channel"]["id"]
    assert (dm[0], opened["already_open"]) == ("D", False)
    await bolt.client.chat_postMessage(channel=dm, text="Someone asked to talk to your agent.")
    assert [m["text"] for m in slack.sent_messages(dm)] == ["Someone asked to talk to your agent."]
    info = (await bolt.client.conversations_info(channel=dm))["channel"]
    assert (info["is_im"], info["user"]) == (True, newcomer.id)
    assert (await bolt.client.users_info(user=OWNER.id))["user"]["real_name"] == "Ann Koch"


async def test_files_travel_both_ways_and_downloads_need_the_bot_token(slack: FakeSlack, bolt: Bolt) -> None:
    report = b"quarterly numbers\n" * 100
    uploaded = await bolt.client.files_upload_v2(channel=OWNER_DM, content=report, filename="report.txt",
                                                 title="Report", initial_comment="Here it is")
    file_id = uploaded["file"]["id"]
    assert slack.files[file_id].data == report
    [message] = slack.sent_messages(OWNER_DM)
    assert (message["text"], message["files"]) == ("Here it is", [file_id])

    photo = bytes(range(256)) * 10
    slack.push_message(OWNER_DM, OWNER, "look", files=[("photo.png", photo, "image/png")])
    event = (await bolt.next_event())[0]["event"]
    url = event["files"][0]["url_private_download"]
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Authorization": f"Bearer {BOT_TOKEN}"}) as answer:
            assert (answer.status, answer.content_type, await answer.read()) == (200, "image/png", photo)
        async with http.get(url) as answer:  # Slack's sign-in page, not the file
            assert (answer.status, answer.content_type) == (200, "text/html")
            assert await answer.read() != photo


async def test_an_event_pushed_while_slack_restarts_arrives_exactly_once(slack: FakeSlack, bolt: Bolt) -> None:
    slack.push_message(OWNER_DM, OWNER, "before")
    await bolt.next_event()
    await slack.stop()
    slack.push_message(OWNER_DM, OWNER, "while down")
    await slack.start()
    body, retry = await bolt.next_event()
    assert (body["event"]["text"], retry) == ("while down", "0")
    slack.push_message(OWNER_DM, OWNER, "after")
    assert (await bolt.next_event())[0]["event"]["text"] == "after"
    await slack.wait_for(lambda: not slack.pending())
    assert bolt.events.empty()
    assert [len(e.envelope_ids) for e in slack.envelopes] == [1, 1, 1]
    assert slack.connections_opened == 2


async def test_an_event_whose_ack_was_lost_comes_again_after_a_reconnect_with_the_same_event_id(
    slack: FakeSlack, bolt: Bolt
) -> None:
    slack.lose_next_acks(1)
    slack.push_message(OWNER_DM, OWNER, "did you get this?")
    first, first_retry = await bolt.next_event()
    await slack.wait_for(lambda: slack.acks)
    await slack.stop()
    await slack.start()
    again, again_retry = await bolt.next_event()
    assert again["event_id"] == first["event_id"]
    assert (first_retry, again_retry) == ("0", "1")
    await slack.wait_for(lambda: not slack.pending())


async def test_a_refresh_request_moves_the_client_to_a_new_connection_without_losing_events(
    slack: FakeSlack, bolt: Bolt
) -> None:
    await slack.send_disconnect("refresh_requested")
    await slack.wait_for(lambda: slack.connections_opened == 2 and slack.open_connections == 1)
    slack.push_message(GENERAL, OWNER, "after the refresh")
    assert (await bolt.next_event())[0]["event"]["text"] == "after the refresh"
    await slack.wait_for(lambda: not slack.pending())
    assert len(slack.sent("apps.connections.open")) == 2
