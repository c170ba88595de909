"""Setting Slack up and keeping it connected: the two tokens checked, starting without blocking, revoked tokens, and
the channel on the Channels page's API.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from nanoclaw_app.channels.manifest import ChannelDeps
from nanoclaw_app.channels.slack import factory
from nanoclaw_app.channels.slack.setup import APP_SECRET, BOT_SECRET, Workspace, check_tokens, clean_tokens
from nanoclaw_app.core.messages import OutboundMessage
from nanoclaw_app.errors import AuthError, ChannelDown, TransientError, UserError
from nanoclaw_app.host import Host
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.settings import Settings
from tests.channels.slack.conftest import pair, say, wait_status
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.runtime import InProcessRuntime
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_workspace import APP_TOKEN, BOT, BOT_TOKEN, OWNER_DM, TEAM_ID, TEAM_NAME
from tests.web.conftest import sign_in


async def test_good_tokens_tell_which_workspace_and_bot(slack: FakeSlack) -> None:
    info = await check_tokens(BOT_TOKEN, APP_TOKEN, slack.api_url)
    assert info == Workspace(team=TEAM_NAME, team_id=TEAM_ID, url="https://nano-test.slack.com/",
                             bot_user_id=BOT.id, bot_name=BOT.name)
    assert [m for m, _ in slack.calls] == ["auth.test", "apps.connections.open"]


@pytest.mark.parametrize(("bot", "app", "says"), [
    ("xoxb-1111-2222-notTheRightOne", APP_TOKEN, "Slack refused the bot token"),
    (BOT_TOKEN, "xapp-1-A0FAKEAPP-3333-wrongAppToken", "Slack refused the app-level token"),
])
async def test_a_refused_token_says_which_without_repeating_it(slack: FakeSlack, bot: str, app: str,
                                                               says: str) -> None:
    with pytest.raises(UserError, match=says) as caught:
        await check_tokens(bot, app, slack.api_url)
    assert bot not in str(caught.value)
    assert app not in str(caught.value)


def test_malformed_or_swapped_tokens_are_refused_before_asking_slack() -> None:
    with pytest.raises(UserError, match="swapped"):
        clean_tokens({"bot_token": APP_TOKEN, "app_token": BOT_TOKEN})
    with pytest.raises(UserError, match="does not look like a Slack bot token"):
        clean_tokens({"bot_token": "hello", "app_token": APP_TOKEN})
    with pytest.raises(UserError, match="app-level token"):
        clean_tokens({"bot_token": BOT_TOKEN, "app_token": ""})
    assert clean_tokens({"bot_token": f" {BOT_TOKEN}\n", "app_token": APP_TOKEN}) == (BOT_TOKEN, APP_TOKEN)


async def test_an_unreachable_slack_is_a_transient_error(slack: FakeSlack) -> None:
    url = slack.api_url
    await slack.stop()
    with pytest.raises(TransientError, match="could not be reached"):
        await check_tokens(BOT_TOKEN, APP_TOKEN, url)


async def test_without_both_tokens_there_is_no_adapter(slack_settings: Settings, host: Host) -> None:
    deps = ChannelDeps(settings=slack_settings, db=host.db, events=host.events, secrets=SecretStore(MemoryKeyring()),
                       store=host.store)
    assert await factory.build(deps) is None
    await deps.secrets.set(BOT_SECRET, BOT_TOKEN)
    assert await factory.build(deps) is None
    await deps.secrets.set(APP_SECRET, APP_TOKEN)
    adapter = await factory.build(deps)
    assert adapter is not None
    assert (adapter.channel_type, adapter.supports_threads) == ("slack", True)
    assert adapter.status().state == "stopped"


async def test_setup_does_not_wait_for_an_unreachable_slack_and_connects_when_it_is_back(
    slack: FakeSlack, host: Host, agent_id: str
) -> None:
    await slack.stop()
    adapter = await host.start_channel("slack")  # returns although nothing answers
    status = await wait_status(host, "reconnecting")
    assert "cannot be reached" in status.detail
    with pytest.raises(ChannelDown):
        await adapter.deliver(OWNER_DM, None, OutboundMessage(kind="text", delivery_id="d1", text="hi"))
    await slack.start()
    status = await wait_status(host, "connected")
    assert status.account == f"@{BOT.name}"
    await pair(host, slack)
    await say(slack, "hello after the outage")


async def test_revoked_tokens_fail_the_channel_in_plain_words_and_alert_the_owner(
    running: Host, slack: FakeSlack
) -> None:
    slack.revoke_bot_token()
    adapter = running.channels.get("slack")
    assert adapter is not None
    with pytest.raises(AuthError, match="new tokens"):  # the first send meets the revoked token
        await adapter.deliver(OWNER_DM, None, OutboundMessage(kind="text", delivery_id="d1", text="hi"))
    status = await wait_status(running, "failed")
    assert "new tokens" in status.detail
    assert status.alert is not None
    with pytest.raises(ChannelDown):  # the message waits until new tokens bring the channel back
        await adapter.deliver(OWNER_DM, None, OutboundMessage(kind="text", delivery_id="d2", text="hi"))


async def test_refused_tokens_at_start_fail_the_channel_instead_of_retrying_forever(
    slack_settings: Settings, slack: FakeSlack
) -> None:
    host = Host(slack_settings, runtime=InProcessRuntime(), secrets=SecretStore(MemoryKeyring()), serve_web=False)
    async with host:
        await host.secrets.set(BOT_SECRET, BOT_TOKEN)
        await host.secrets.set(APP_SECRET, "xapp-1-A0FAKEAPP-3333-revokedAppToken")
        await host.start_channel("slack")
        status = await wait_status(host, "failed")
        assert "Paste the new tokens" in status.detail
        assert slack.connections_opened == 0


# ------------------------------------------------------------------------------------------ the Channels page's API


@pytest.fixture
async def web(slack_settings: Settings, slack: FakeSlack) -> AsyncIterator[tuple[Host, httpx.AsyncClient]]:
    host = Host(slack_settings, runtime=InProcessRuntime(), secrets=SecretStore(MemoryKeyring()))
    async with host:
        assert host.url is not None
        async with httpx.AsyncClient(base_url=host.url.rstrip("/"), timeout=30) as client:
            await sign_in(client, host)
            yield host, client


async def test_the_channels_page_lists_slack_and_saves_its_tokens_without_sending_them_back(
    web: tuple[Host, httpx.AsyncClient], slack: FakeSlack
) -> None:
    host, client = web
    listed = (await client.get("/api/channels")).json()["channels"]
    [entry] = [c for c in listed if c["name"] == "slack"]
    assert entry["set_up"] is False
    assert entry["page_module"] == "/static/channels/slack.js"
    manifest = json.loads(entry["details"]["app_manifest"])
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert "app_mention" in manifest["settings"]["event_subscriptions"]["bot_events"]

    refused = await client.post("/api/channels/slack/tokens",
                                json={"bot_token": "xoxb-1111-2222-notTheRightOne", "app_token": APP_TOKEN})
    assert refused.status_code == 400
    assert "refused the bot token" in refused.json()["error"]
    assert await host.secrets.get(BOT_SECRET) is None

    saved = await client.post("/api/channels/slack/tokens", json={"bot_token": BOT_TOKEN, "app_token": APP_TOKEN})
    assert saved.status_code in (200, 201), saved.text
    assert saved.json()["workspace"]["team"] == TEAM_NAME
    await wait_status(host, "connected")
    view = (await client.get("/api/channels/slack")).json()
    assert view["details"]["workspace"]["bot_name"] == BOT.name
    bodies = [saved.text, json.dumps(view), (await client.get("/api/channels")).text]
    assert not any(BOT_TOKEN in b or APP_TOKEN in b for b in bodies)
