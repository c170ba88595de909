"""A credentialed request under "ask" waits for a card in the owner's Telegram DM: Approve sends it, Reject is a 403.

The request takes the container's path: a client with the proxy variables → the runner's loopback relay → the unix
socket the host's egress proxy opened for that session → TLS with the install CA → the fake HTTPS API (its own CA).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest

from agent_runner.gateway_relay import GatewayRelay
from nanoclaw_app.db import credentials
from nanoclaw_app.host import Host
from nanoclaw_app.settings import Settings, load_settings
from tests.channels.telegram.conftest import dm_session, pair, say
from tests.channels.telegram.test_cards import buttons, card_in
from tests.fakes.https_api import FakeHttpsApi
from tests.fakes.telegram_api import ANN, FakeBotApi

TOKEN = "ghp_TELEGRAMapprovedONLY"


@pytest.fixture
async def service() -> AsyncIterator[FakeHttpsApi]:
    server = FakeHttpsApi(host="127.0.0.2")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def tg_settings(settings: Settings, api: FakeBotApi, service: FakeHttpsApi) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2, runtime="local",
                         telegram_api_base_url=api.base_url, egress_approval_seconds=20.0,
                         egress_private_exceptions=f"{service.host}:{service.port}",
                         egress_trusted_ca_file=str(service.ca_file))


async def test_approve_and_reject_on_telegram_decide_a_held_request(
    telegram: Host, api: FakeBotApi, agent_id: str, service: FakeHttpsApi
) -> None:
    made = await credentials.create(telegram.db, name="GitHub", host_pattern=f"{service.host}:{service.port}",
                                    kind="bearer", policy="ask")
    await telegram.secrets.set(credentials.secret_name(made.id), TOKEN)
    await pair(telegram, api)  # Ann owns the install; her DM is where approvals go
    await say(api, "check my repos")
    session, _ = await dm_session(telegram, agent_id)
    access = await telegram.egress.attach(session.id, agent_id)
    assert access.socket_path is not None
    relay = GatewayRelay(access.socket_path, what="egress proxy")
    trust = ssl.create_default_context(cafile=str(telegram.egress.bundle_path))
    async with httpx.AsyncClient(proxy=relay.url(), verify=trust, timeout=30) as client:
        await relay.start()

        async def tap(label: str, path: str) -> httpx.Response:
            held = asyncio.create_task(client.get(f"{service.url}{path}"))
            card = await card_in(api, ANN.id, "🔑 Nano wants to use GitHub")
            assert f"GET {service.host}:{service.port}{path}" in card["text"]
            assert not held.done()
            api.push_callback(card, dict(buttons(card))[label])
            response = await asyncio.wait_for(held, 20)
            shown = "Approved" if label == "Approve" else "Rejected"
            await api.wait_for(lambda: shown in api.messages[(ANN.id, card["message_id"])]["text"])
            return response

        allowed = await tap("Approve", "/user")
        assert allowed.status_code == 200
        assert allowed.json()["headers"]["authorization"] == f"Bearer {TOKEN}"

        denied = await tap("Reject", "/repos")
        assert denied.status_code == 403
        where = f"{service.host}:{service.port}"
        assert denied.text.strip() == f"Ann Koch denied the use of the GitHub credential for GET {where}/repos."
    await relay.aclose()
    assert [r["path"] for r in service.requests] == ["/user"]
