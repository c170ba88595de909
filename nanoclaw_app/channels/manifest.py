"""What a channel folder gives the rest of the app: its manifest, and the setup context its actions run in.

``ChannelSettings`` (the base of a channel's settings object) lives in ``nanoclaw_app.settings`` and is re-exported
here, so a channel imports everything it declares itself with from this one module.

The app reaches a channel only through these shapes (and the adapter contract in ``core.adapter_contract``). A
channel's ``manifest.py`` builds one :class:`ChannelManifest`; ``channels.registry`` lists them. Nothing here imports
a channel folder or a platform library, so every channel module can import this one without a circle.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from nanoclaw_app.core.adapter_contract import ChannelAdapter
from nanoclaw_app.core.events import EventBus
from nanoclaw_app.db.database import Database
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.sessions.store import SessionStore
from nanoclaw_app.settings import ChannelSettings as ChannelSettings  # re-exported for the channels
from nanoclaw_app.settings import Settings


@dataclass(frozen=True, slots=True)
class ChannelDeps:
    """What an adapter may be built with."""

    settings: Settings
    db: Database
    events: EventBus
    secrets: SecretStore
    store: SessionStore


BuildFn = Callable[[ChannelDeps], Awaitable[ChannelAdapter | None]]
"""Builds the adapter when the channel is set up (a token saved, a device linked); None when it is not."""


class SetupContext(Protocol):
    """What a channel's setup actions may use: the app's parts, its own adapter while it runs, and its own switch."""

    name: str
    title: str
    db: Database
    secrets: SecretStore
    events: EventBus

    @property
    def settings(self) -> Settings:
        """The settings now (they may change while the app runs)."""

    @property
    def adapter(self) -> ChannelAdapter | None:
        """The running adapter of this channel, or None while it is off (or no NanoClaw runs in this process)."""

    @property
    def host_running(self) -> bool:
        """False in a CLI process without a running NanoClaw: what needs the live link must say so."""

    def require_host(self) -> None:
        """Raise the plain "start NanoClaw first" error when no NanoClaw runs in this process."""

    async def start(self, *, restart: bool = False) -> None:
        """Start the channel now (again when ``restart``); a failure turns it back off and is raised."""

    async def stop(self) -> None:
        """Disconnect the channel (its setup stays)."""

    async def set_enabled(self, enabled: bool) -> None:
        """Record that the channel starts with NanoClaw (or not)."""

    async def put_secret(self, name: str, value: str, label: str) -> None:
        """Keep a token in the secret store (the value never leaves it again)."""

    async def delete_secret(self, name: str) -> None:
        """Forget a token."""

    async def save_settings(self, changes: Mapping[str, Any]) -> None:
        """Check, save and apply settings (a running channel whose own settings changed reconnects)."""

    def changed(self) -> None:
        """Tell open pages to refresh this channel."""

    async def view(self) -> Any:
        """This channel as the pages show it (the answer of actions that change it)."""


ActionFn = Callable[[SetupContext, Mapping[str, Any]], Awaitable[object]]
"""Runs a setup action with the request's JSON body; returns the answer (None: the channel's view)."""


@dataclass(frozen=True, slots=True)
class ActionField:
    """One value an action takes; ``secret`` ones are read hidden by the CLI and never echoed."""

    name: str
    label: str
    secret: bool = False


@dataclass(frozen=True, slots=True)
class SetupAction:
    """A step of setting the channel up (check a token, show the QR code, log out), at ``/api/channels/<name>/<id>``."""

    run: ActionFn
    summary: str
    method: Literal["GET", "POST", "PUT"] = "POST"
    fields: tuple[ActionField, ...] = ()


class ChannelSetup(Protocol):
    """The channel-specific half of the channels service (``services.channels`` is the generic half)."""

    async def is_set_up(self, ctx: SetupContext) -> bool:
        """Whether it can start without more setup (a token saved, a device linked)."""

    async def details(self, ctx: SetupContext) -> dict[str, Any]:
        """What its page module shows beyond the common view (the bot's name, the QR code, the mode)."""

    async def send_to(self, ctx: SetupContext) -> str | None:
        """Whom a pairing code is sent to while the link has not said who we are (``@bot``, ``+49…``)."""

    async def not_working(self, ctx: SetupContext) -> str | None:
        """What is missing before it works (``WhatsApp is not linked yet: scan the QR code…``), or None."""

    async def enable(self, ctx: SetupContext) -> None:
        """Turn a channel that was set up before back on (raise ``UserError`` saying what is missing)."""

    async def forget(self, ctx: SetupContext) -> None:
        """Remove its setup (delete the token, unlink the device) as the channel is turned off for good."""


@dataclass(frozen=True, slots=True)
class SelfCheck:
    """A channel's own ``nanoclaw doctor`` line: whether its library works here, and what to do when not."""

    ok: bool
    detail: str
    fix: str = ""


def library_check(title: str, distribution: str, *modules: str, fix: str = "reinstall NanoClaw",
                  part: str = "") -> Callable[[], Awaitable[SelfCheck]]:
    """A self check that imports a channel's library modules (a frozen build must carry them) and names the version."""

    async def check() -> SelfCheck:
        try:
            for module in modules:
                await asyncio.to_thread(importlib.import_module, module)
        except Exception as err:  # ImportError, or whatever a broken install raises while importing
            return SelfCheck(False, f"the {title} library does not load: {err}", fix)
        try:
            version = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:  # frozen: no distribution metadata
            version = "bundled"
        return SelfCheck(True, f"{distribution} {version}, {part} loads" if part else f"{distribution} {version} loads")

    return check


def no_pair_hint(code: str, send_to: str | None) -> str:
    """The fallback sentence for where to send a pairing code."""
    return f"Send {code} to {send_to or 'the assistant'} from your own account."


@dataclass(frozen=True, slots=True)
class ChannelManifest:
    """One channel as the app knows it: everything outside its folder goes through here."""

    name: str
    """The channel type: the prefix of its user and chat ids (``telegram:123``), its URL segment and its strings."""
    title: str
    build: BuildFn
    setup: ChannelSetup
    actions: Mapping[str, SetupAction] = field(default_factory=dict)
    token_action: str | None = None
    """The action whose fields are the channel's tokens (``nanoclaw channels token <name>`` runs it)."""
    in_wizard: bool = False
    """Offered as a step of the first-run wizard (the Channels page offers every channel)."""
    pair_hint: Callable[[str, str | None], str] = no_pair_hint
    """The sentence telling where to send a pairing code (the CLI's ``pair``)."""
    settings: type[ChannelSettings] | None = None
    """Its settings object: a change to one of them reconnects a running channel."""
    self_check: Callable[[], Awaitable[SelfCheck]] | None = None
    """Whether its platform library loads here (``nanoclaw doctor``); None when there is nothing to check."""

    @property
    def page_module(self) -> str:
        """The ES module that renders its setup on the Channels page and in the wizard."""
        return f"/static/channels/{self.name}.js"
