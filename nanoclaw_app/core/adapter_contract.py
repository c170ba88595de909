"""The adapter contract between the host and a chat platform.

Adapters raise on failure (``TransientError`` when a retry may help, ``AuthError`` when the account must be
re-paired, anything else is permanent); retries are decided in one place, delivery.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal, Protocol

from nanoclaw_app.core.messages import InboundMessage, OutboundMessage
from nanoclaw_app.errors import ConfigError

LinkState = Literal[
    "not_paired",    # no account linked yet (WhatsApp before the QR is scanned, Telegram without a token)
    "pairing",       # showing a QR / waiting for the phone
    "connecting",    # dialing (first connect or after a restart)
    "connected",     # up; sends go out
    "reconnecting",  # a transient drop; retrying with backoff (``retry_at`` says when)
    "logged_out",    # the account was unlinked on the phone: re-pair
    "banned",        # the platform refuses us for a while (``detail`` says why and until when)
    "replaced",      # another program took over this account's connection
    "failed",        # a setup error the user must fix (bad token, client too old)
    "stopped",       # torn down
]


@dataclass(frozen=True, slots=True)
class ChannelStatus:
    """Where a channel's link stands, in words the app shows as they are."""

    state: LinkState
    detail: str = ""
    """Plain words for the user: what happened and what to do."""
    account: str | None = None
    """Who we are on the platform (``+49 170 1234567``, ``@nano_bot``), once known."""
    retry_at: str | None = None
    """ISO time of the next reconnect attempt while ``reconnecting``."""
    alert: str | None = None
    """Set on a transition the owner must hear about (link lost, logged out): sent to them over another channel."""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def up(self) -> bool:
        """Whether sends can go out now."""
        return self.state == "connected"

    def to_dict(self) -> dict[str, object]:
        """For the API and events."""
        return {"state": self.state, "detail": self.detail, "account": self.account, "retry_at": self.retry_at,
                "extra": dict(self.extra)}


class HostCallbacks(Protocol):
    """What an adapter may call on the host."""

    async def on_inbound(self, message: InboundMessage) -> None:
        """A message arrived."""

    async def on_metadata(self, channel_type: str, platform_id: str, name: str | None, is_group: bool) -> None:
        """The platform told us a chat's name or kind."""

    async def on_action(self, question_id: str, value: str, user_id: str) -> None:
        """A person clicked a card option (``user_id`` is namespaced ``<channel>:<handle>``)."""

    async def on_status(self, channel_type: str, status: ChannelStatus) -> None:
        """The link changed state: shown in the app; "connected" sends what waited; ``alert`` reaches the owner."""


class ChannelAdapter(ABC):
    """Base of every adapter. Subclasses set the class attributes and implement the abstract methods."""

    channel_type: str = ""
    supports_threads: bool = False
    idempotent_delivery: bool = False
    """True when ``deliver`` with the same ``delivery_id`` twice sends once; then an uncertain send is retried."""

    @abstractmethod
    async def setup(self, host: HostCallbacks) -> None:
        """Connect and start feeding ``host``."""

    @abstractmethod
    async def teardown(self) -> None:
        """Disconnect; safe to call twice."""

    @abstractmethod
    def is_connected(self) -> bool:
        """Whether the platform link is up now."""

    @abstractmethod
    async def deliver(self, platform_id: str, thread_id: str | None, message: OutboundMessage) -> str | None:
        """Send; return the platform's message id (None when the platform gives none)."""

    async def set_typing(self, platform_id: str, thread_id: str | None) -> None:  # noqa: B027 - optional hook
        """Show a typing indicator (optional)."""

    async def subscribe(self, platform_id: str, thread_id: str) -> None:  # noqa: B027 - optional hook
        """Follow a thread so later messages in it arrive without a mention (threaded platforms; optional)."""

    async def open_dm(self, user_handle: str) -> str | None:
        """Return the DM chat id for a user. The default: the handle itself addresses the DM (Telegram, WhatsApp)."""
        return user_handle

    def status(self) -> ChannelStatus:
        """The link's state for the app (default: connected or not)."""
        return ChannelStatus("connected" if self.is_connected() else "connecting")


class ChannelRegistry:
    """The adapters running in this host, by channel type."""

    def __init__(self) -> None:
        self._adapters: dict[str, ChannelAdapter] = {}

    def add(self, adapter: ChannelAdapter) -> None:
        """Register an adapter; one per channel type."""
        if not adapter.channel_type:
            raise ConfigError(f"{type(adapter).__name__} has no channel_type")
        if adapter.channel_type in self._adapters:
            raise ConfigError(f"channel {adapter.channel_type!r} is registered twice")
        self._adapters[adapter.channel_type] = adapter

    def remove(self, channel_type: str) -> ChannelAdapter | None:
        """Unregister an adapter (a channel turned off while the host runs); returns it so it can be torn down."""
        return self._adapters.pop(channel_type, None)

    def get(self, channel_type: str) -> ChannelAdapter | None:
        """The adapter for a channel type, or None when that channel is not running."""
        return self._adapters.get(channel_type)

    def __contains__(self, channel_type: object) -> bool:
        return channel_type in self._adapters

    def all(self) -> list[ChannelAdapter]:
        """Every registered adapter."""
        return list(self._adapters.values())
