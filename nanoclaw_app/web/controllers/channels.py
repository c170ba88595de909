"""The channels area: one card per channel (``/channels``) and their JSON API (``/api/channels/...``).

The logic is in ``services/channels.py``, generic over the channels' manifests; a channel's own setup steps are
``/api/channels/<name>/<action>``. Live changes reach the page as events (``channel.status``, ``channel.qr``,
``channel.paired``, ``pairing.invalidated``, ``channels.changed``). No answer ever carries a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from nanoclaw_app.core.pairing import OWNER_INTENT
from nanoclaw_app.services import channels
from nanoclaw_app.services.channels import ChannelView, PairingCodeView
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.web.pages import page


@dataclass
class ChannelList:
    """The channels, in the order the app lists them."""

    channels: list[ChannelView]


@dataclass
class CodeIn:
    """What sending the code does: ``owner`` (the sender's chat becomes the owner's) or ``wire:<agent id>``."""

    intent: str = OWNER_INTENT


@dataclass
class OffIn:
    """``forget`` also removes the channel's setup (deletes its token, unlinks the device)."""

    forget: bool = False


class ChannelsController(Controller):
    """``/channels`` and ``/api/channels``."""

    @get("/channels", include_in_schema=False)
    async def channels_page(self) -> Template:
        """The channels page; its script loads the cards from the API and follows the live events."""
        return page("channels.html", "channels")

    @get("/api/channels", summary="The channels with their health, waiting sends and paired chats")
    async def list_channels(self, services: NamedDependency[AppServices]) -> ChannelList:
        """In the order the app lists them."""
        return ChannelList(channels=await channels.list_channels(services))

    @get("/api/channels/{name:str}", summary="One channel")
    async def get_channel(self, services: NamedDependency[AppServices], name: FromPath[str]) -> ChannelView:
        """404 for a channel NanoClaw does not have."""
        return await channels.get_channel(services, name)

    @post("/api/channels/{name:str}/on", status_code=200, summary="Turn a set-up channel back on")
    async def turn_on(self, services: NamedDependency[AppServices], name: FromPath[str]) -> ChannelView:
        """As it was set up last (a saved mode, a saved token); says what is missing otherwise."""
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
        """Send it from the chat to bind (``@bot 1234`` in a group); a wrong guess withdraws every code."""
        return await channels.new_pairing_code(services, name, data.intent if data else OWNER_INTENT)

    @get("/api/channels/{name:str}/{action:str}", summary="Read a channel's setup state (its QR code)")
    async def read_action(
        self, services: NamedDependency[AppServices], name: FromPath[str], action: FromPath[str]
    ) -> Any:
        """One of the channel's own setup actions (its manifest lists them), e.g. ``GET /api/channels/whatsapp/qr``."""
        return await channels.run_action(services, name, action, "GET")

    @post("/api/channels/{name:str}/{action:str}", status_code=200, summary="Run a step of a channel's setup")
    async def run_action(
        self, services: NamedDependency[AppServices], name: FromPath[str], action: FromPath[str],
        data: JSONBody[dict[str, Any] | None] = None,
    ) -> Any:
        """A token to check and save, a phone-number code, logout, reconnect… (the channel's manifest lists them).

        The answer is the action's own (a bot, a code), else the channel as ``GET /api/channels/{name}`` shows it.
        """
        return await channels.run_action(services, name, action, "POST", data)

    @put("/api/channels/{name:str}/{action:str}", summary="Change a channel's own setting")
    async def put_action(
        self, services: NamedDependency[AppServices], name: FromPath[str], action: FromPath[str],
        data: JSONBody[dict[str, Any] | None] = None,
    ) -> Any:
        """E.g. ``PUT /api/channels/telegram/api-server`` (checked before it is kept)."""
        return await channels.run_action(services, name, action, "PUT", data)


ROUTES: list[ControllerRouterHandler] = [ChannelsController]
