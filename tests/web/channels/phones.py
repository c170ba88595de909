"""The WhatsApp side of the channel page tests: fake neonize clients made by the adapter, QR codes, the drawn QR."""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import expect

from nanoclaw_app.channels.manifest import ChannelDeps
from nanoclaw_app.channels.whatsapp.adapter import WhatsAppAdapter
from nanoclaw_app.core.adapter_contract import ChannelAdapter
from tests.fakes.neonize_client import OWN_NUMBER, FakeNeonizeClient

OWN_JID = f"{OWN_NUMBER}@s.whatsapp.net"
OWN_DISPLAY = "+49 170 1234567"
QR_1 = ("2@Vj3cQ0xq1kTtR8k0f9XWw8Dq,8cK9m1zA0B2nE4pQ6rT8vX0yZ2aC4eG6iK8mO0qS2u=,"
        "Yc7Hk2fq9J0Tz5W3m1pB8nV6xL4dR2sF0gH9jK7lM5=,P0o9I8u7Y6t5R4e3W2q1")
QR_2 = ("2@Hh1dU7ke5LqP3sW9xZ2cV6bN8mA4fG0jK1lO3iU5yT,3gF5hJ7kL9zX1cV3bN5mQ7wE9rT1yU3iO5pA7sD9=,"
        "Wq2Er4Ty6Ui8Op0As2Df4Gh6Jk8Lz0Xc2Vb4Nm6=,M1n2B3v4C5x6Z7l8K9j0")


class Phones:
    """The fake neonize clients the WhatsApp adapter made (a logout makes a fresh one)."""

    def __init__(self) -> None:
        self.clients: list[FakeNeonizeClient] = []

    def factory(self, name: str) -> FakeNeonizeClient:
        client = FakeNeonizeClient(name)
        self.clients.append(client)
        return client

    async def started(self, count: int) -> FakeNeonizeClient:
        """The ``count``-th client (the adapter makes a new one per connection), once it is connecting."""
        async with asyncio.timeout(15):
            while len(self.clients) < count:
                await asyncio.sleep(0.02)
        client = self.clients[count - 1]
        await client.wait_connect_call()
        return client

    async def build(self, deps: ChannelDeps) -> ChannelAdapter | None:
        return WhatsAppAdapter(deps, client_factory=self.factory, backoff=(0.05, 0.1, 0.2), outage_alert_after=600.0,
                               qr_timeout=600.0)



async def qr_source(scope: Any) -> str:
    """The data: URL of the QR picture shown in ``scope`` (a card or a wizard step), once the browser has drawn it."""
    img = scope.locator("img.ch-qr")
    await expect(img).to_be_visible()
    width = await img.evaluate("async (i) => { await i.decode(); return i.naturalWidth; }")
    assert width > 0, "the QR picture did not decode"
    return str(await img.get_attribute("src"))
