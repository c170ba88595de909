"""A test channel adapter: records every delivery and lets tests inject inbound messages and clicks."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

from nanoclaw_app.core.adapter_contract import ChannelAdapter, HostCallbacks
from nanoclaw_app.core.messages import InboundMessage, OutboundMessage
from nanoclaw_app.errors import ChannelDown, TransientError


@dataclass
class Sent:
    """One delivery the adapter received."""

    platform_id: str
    thread_id: str | None
    message: OutboundMessage
    platform_message_id: str


@dataclass
class FakeChannel(ChannelAdapter):
    """In-memory adapter. ``fail_next`` makes the next N deliveries raise ``TransientError``."""

    channel_type: str = "test"
    supports_threads: bool = False
    idempotent_delivery: bool = False
    dm_prefix: str | None = None
    sent: list[Sent] = field(default_factory=list)
    typing: list[tuple[str, str | None]] = field(default_factory=list)
    subscriptions: list[tuple[str, str]] = field(default_factory=list)
    fail_next: int = 0
    fail_always: bool = False
    down: bool = False
    """While True, sends raise ``ChannelDown`` (the link is reconnecting)."""
    host: HostCallbacks | None = None
    connected: bool = False
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    _delivered: asyncio.Event = field(default_factory=asyncio.Event)

    async def setup(self, host: HostCallbacks) -> None:
        self.host = host
        self.connected = True

    async def teardown(self) -> None:
        self.connected = False

    def is_connected(self) -> bool:
        return self.connected

    async def deliver(self, platform_id: str, thread_id: str | None, message: OutboundMessage) -> str | None:
        if self.down:
            raise ChannelDown(self.channel_type, "the test channel is reconnecting")
        if self.fail_always or self.fail_next > 0:
            self.fail_next = max(0, self.fail_next - 1)
            raise TransientError("test channel refused the send")
        platform_message_id = f"{self.channel_type}-m{next(self._ids)}"
        self.sent.append(Sent(platform_id, thread_id, message, platform_message_id))
        self._delivered.set()
        return platform_message_id

    async def set_typing(self, platform_id: str, thread_id: str | None) -> None:
        self.typing.append((platform_id, thread_id))

    async def subscribe(self, platform_id: str, thread_id: str) -> None:
        self.subscriptions.append((platform_id, thread_id))

    async def open_dm(self, user_handle: str) -> str | None:
        if self.dm_prefix is None:
            return user_handle
        return f"{self.dm_prefix}{user_handle}"

    async def inject(self, message: InboundMessage) -> None:
        """Hand a message to the host as the platform would."""
        assert self.host is not None, "adapter is not set up"
        await self.host.on_inbound(message)

    async def click(self, question_id: str, value: str, user_id: str) -> None:
        """Press a card option as ``user_id``."""
        assert self.host is not None, "adapter is not set up"
        await self.host.on_action(question_id, value, user_id)

    async def wait_sent(self, count: int, timeout: float = 5.0) -> list[Sent]:
        """Wait until at least ``count`` deliveries happened."""
        async with asyncio.timeout(timeout):
            while len(self.sent) < count:
                self._delivered.clear()
                await self._delivered.wait()
        return self.sent

    def texts(self) -> list[str]:
        """Texts of all deliveries, in order."""
        return [s.message.text for s in self.sent]
