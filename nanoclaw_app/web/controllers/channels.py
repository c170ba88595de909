"""The channels area: the WhatsApp and Telegram cards (``/channels``) and their JSON API (``/api/channels/...``).

The logic is in ``services/channels.py``; live changes reach the page as events (``channel.status``, ``channel.qr``,
``channel.paired``, ``pairing.invalidated``, ``channels.changed``). No answer ever carries the Telegram token.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Controller, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from nanoclaw_app.channels.pairing import OWNER_INTENT
from nanoclaw_app.services import channels
from nanoclaw_app.services.channels import ChannelView, PairingCodeView, PhoneCode, QrView, TelegramSetup
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.web.pages import page


@dataclass
class ChannelList:
    """The phone channels, in the order the app lists them."""

    channels: list[ChannelView]


@dataclass
class ModeIn:
    """How WhatsApp is used: ``self`` (your own number, "Message yourself") or ``dedicated`` (a second number)."""

    mode: str


@dataclass
class PhoneIn:
    """The WhatsApp account's phone number, with its country code."""

    phone: str


@dataclass
class TokenIn:
    """The bot token from @BotFather (kept in the secret store, never sent back)."""

    token: str


@dataclass
class ApiServerIn:
    """The Bot API server's address; empty for Telegram's own."""

    url: str = ""


@dataclass
class CodeIn:
    """What sending the code does: ``owner`` (the sender's chat becomes the owner's) or ``wire:<agent id>``."""

    intent: str = OWNER_INTENT


@dataclass
class OffIn:
    """``forget`` also deletes the Telegram token, or unlinks the WhatsApp device."""

    forget: bool = False


class ChannelsController(Controller):
    """``/channels`` and ``/api/channels``."""

    @get("/channels", include_in_schema=False)
    async def channels_page(self) -> Template:
        """The channels page; its script loads the cards from the API and follows the live events."""
        return page("channels.html", "channels")

    @get("/api/channels", summary="The phone channels with their health, waiting sends and paired chats")
    async def list_channels(self, services: NamedDependency[AppServices]) -> ChannelList:
        """WhatsApp and Telegram, in that order."""
        return ChannelList(channels=await channels.list_channels(services))

    @get("/api/channels/{name:str}", summary="One phone channel")
    async def get_channel(self, services: NamedDependency[AppServices], name: FromPath[str]) -> ChannelView:
        """404 for a channel NanoClaw does not have."""
        return await channels.get_channel(services, name)

    @post("/api/channels/{name:str}/on", status_code=200, summary="Turn a set-up channel back on")
    async def turn_on(self, services: NamedDependency[AppServices], name: FromPath[str]) -> ChannelView:
        """WhatsApp starts in its saved mode; Telegram needs its token saved first."""
        return await channels.enable_channel(services, name)

    @post("/api/channels/{name:str}/off", status_code=200, summary="Turn a channel off")
    async def turn_off(
        self, services: NamedDependency[AppServices], name: FromPath[str], data: JSONBody[OffIn | None] = None
    ) -> ChannelView:
        """It disconnects now and stays off after a restart; its setup stays unless ``forget``."""
        return await channels.disable_channel(services, name, forget=bool(data and data.forget))

    @post("/api/channels/{name:str}/pairing-code", status_code=201, summary="A 4-digit code to pair a phone chat")
    async def pairing_code(
        self, services: NamedDependency[AppServices], name: FromPath[str], data: JSONBody[CodeIn | None] = None
    ) -> PairingCodeView:
        """Send it from the chat to bind (``@bot 1234`` in a Telegram group); a wrong guess withdraws every code."""
        return await channels.new_pairing_code(services, name, data.intent if data else OWNER_INTENT)

    @post("/api/channels/whatsapp/enable", status_code=200, summary="Turn WhatsApp on in a mode and start pairing")
    async def whatsapp_enable(self, services: NamedDependency[AppServices], data: JSONBody[ModeIn]) -> ChannelView:
        """A QR code follows as ``channel.qr`` events (and in ``GET /api/channels/whatsapp/qr``)."""
        return await channels.enable_whatsapp(services, data.mode)

    @get("/api/channels/whatsapp/qr", summary="The WhatsApp QR code to scan now")
    async def whatsapp_qr(self, services: NamedDependency[AppServices]) -> QrView:
        """An SVG; ``svg`` is null while there is none. WhatsApp replaces it every ~20 seconds (``channel.qr``)."""
        return await channels.whatsapp_qr(services)

    @post("/api/channels/whatsapp/phone-code", status_code=200, summary="Link WhatsApp with a phone-number code")
    async def whatsapp_phone_code(self, services: NamedDependency[AppServices], data: JSONBody[PhoneIn]) -> PhoneCode:
        """The 8-character code to type on the phone instead of scanning the QR code."""
        return await channels.whatsapp_pair_phone(services, data.phone)

    @post("/api/channels/whatsapp/logout", status_code=200, summary="Unlink NanoClaw from WhatsApp")
    async def whatsapp_logout(self, services: NamedDependency[AppServices]) -> ChannelView:
        """The linked device is removed; a new QR code follows to link again."""
        return await channels.whatsapp_logout(services)

    @post("/api/channels/whatsapp/reconnect", status_code=200, summary="Connect WhatsApp again now")
    async def whatsapp_reconnect(self, services: NamedDependency[AppServices]) -> ChannelView:
        """After another program took over the link, or once an update or a block is over; the link stays."""
        return await channels.whatsapp_reconnect(services)

    @post("/api/channels/whatsapp/repair", status_code=200, summary="Link WhatsApp again")
    async def whatsapp_repair(self, services: NamedDependency[AppServices]) -> ChannelView:
        """After a logout, a ban or a takeover: whatever is left is unlinked and a new QR code follows."""
        return await channels.whatsapp_repair(services)

    @post("/api/channels/telegram/token", status_code=200, summary="Check and save the Telegram bot token")
    async def telegram_token(self, services: NamedDependency[AppServices], data: JSONBody[TokenIn]) -> TelegramSetup:
        """Checked with Telegram first (nothing is kept when it refuses); then Telegram is turned on and (re)started."""
        return await channels.set_telegram_token(services, data.token)

    @put("/api/channels/telegram/api-server", summary="Use another Telegram Bot API server")
    async def telegram_api_server(
        self, services: NamedDependency[AppServices], data: JSONBody[ApiServerIn]
    ) -> ChannelView:
        """Saved to the ``telegram_api_base_url`` setting; a saved token is checked against the new server first."""
        return await channels.set_telegram_api_base_url(services, data.url)


ROUTES: list[ControllerRouterHandler] = [ChannelsController]
