"""Setting up the phone channels (WhatsApp, Telegram) from the app, the wizard and ``nanoclaw channels``.

Every function here is shared by the JSON API and the CLI. What needs a live link (a QR code, a phone-number code,
starting or stopping a channel) needs the running host: in a CLI process without one (``services.channels`` is None)
those actions say to start NanoClaw first instead of pretending. Platform libraries are never imported here: the
WhatsApp adapter is reached through the small protocol below, Telegram's token check is imported when it is called.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from nanoclaw_app.channels import pairing
from nanoclaw_app.channels import registry as channel_registry
from nanoclaw_app.channels.base import ChannelAdapter
from nanoclaw_app.channels.whatsapp.state_keys import DEDICATED_MODE, MODE_KEY, NUMBER_KEY, SELF_MODE
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import app_state, delivery_attempts, messaging
from nanoclaw_app.errors import ConfigError, NanoClawError, NotFound, UserError
from nanoclaw_app.services.context import AppServices, ChannelControl
from nanoclaw_app.services.secrets import delete_secret, put_secret
from nanoclaw_app.settings import ENV_PREFIX, load_settings, save_settings

log = logging.getLogger(__name__)

WHATSAPP = "whatsapp"
TELEGRAM = "telegram"
MODES = (SELF_MODE, DEDICATED_MODE)
DEFAULT_MODE = DEDICATED_MODE
BOT_KEY = "telegram.bot"
"""The bot the saved token belongs to (JSON), so the page can name it while Telegram is off."""
TOKEN_SECRET = "telegram.bot_token"  # noqa: S105 - the secret's name, not its value
"""Same name as ``channels.telegram.setup.TOKEN_SECRET`` (not imported: that module loads the Telegram library)."""
TOKEN_LABEL = "Telegram bot token"  # noqa: S105 - a label shown next to the name
DEFAULT_TELEGRAM_API = "https://api.telegram.org"
START_FIRST = "NanoClaw is not running: start it (`nanoclaw`, or `nanoclaw serve` on a server), then try again"
_TOKEN = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{20,}$")
_PHONE_CHARS = re.compile(r"[\s()./-]")
PRIVACY_NOTE = (
    "Group privacy mode is on: in groups, the bot only sees commands, messages that mention it and replies to its "
    "messages (your direct chat with the bot is not affected). To let it read every group message, send /setprivacy to "
    "@BotFather, choose @{username}, then Disable, and add the bot to the group again."
)


# ---------------------------------------------------------------------------------------------------- shapes


@dataclass
class LinkStatus:
    """Where a channel's link stands, in the adapter's own words (see ``channels.base.ChannelStatus``)."""

    state: str
    detail: str = ""
    account: str | None = None
    retry_at: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class PairedChat:
    """A chat of this channel NanoClaw knows, with the agents answering there."""

    id: str
    title: str
    platform_id: str
    is_group: bool
    agents: list[str] = field(default_factory=list)


@dataclass
class QrView:
    """The WhatsApp QR code to scan now (``svg`` is None while there is none)."""

    svg: str | None = None
    issued_at: str | None = None


@dataclass
class BotView:
    """The Telegram bot a token belongs to (from ``getMe``)."""

    id: int
    username: str
    name: str
    can_join_groups: bool
    can_read_all_group_messages: bool


@dataclass
class PairingCodeView:
    """A code to send from a phone chat to bind it, and whom to send it to."""

    code: str
    channel_type: str
    intent: str
    created_at: str
    send_to: str | None
    """``@bot`` on Telegram, the linked number on WhatsApp (None while unknown)."""


@dataclass
class ChannelView:
    """One phone channel as the channels page, the wizard and ``nanoclaw channels list`` show it."""

    name: str
    title: str
    enabled: bool
    """Turned on by the user: it starts with NanoClaw."""
    running: bool
    set_up: bool
    """WhatsApp: a device is linked; Telegram: a bot token is saved."""
    status: LinkStatus
    waiting: int
    """Replies waiting for this channel's link to come back."""
    chats: list[PairedChat] = field(default_factory=list)
    pairing_code: PairingCodeView | None = None
    mode: str | None = None
    qr: QrView | None = None
    bot: BotView | None = None
    privacy_note: str | None = None
    api_base_url: str | None = None


@dataclass
class TelegramSetup:
    """A checked and saved Telegram token: the bot it belongs to, and the channel now."""

    bot: BotView
    privacy_mode: bool
    """True when the bot only sees commands, mentions and replies in groups."""
    privacy_note: str | None
    started: bool
    """False in a CLI process without a running NanoClaw: Telegram starts with it."""
    channel: ChannelView


@dataclass
class PhoneCode:
    """WhatsApp's 8-character code for linking by phone number."""

    code: str
    phone: str


@runtime_checkable
class WhatsAppControls(Protocol):
    """What the app uses of the WhatsApp adapter beyond ``ChannelAdapter``.

    Duck-typed: importing the adapter's module may load the platform library.
    """

    @property
    def qr(self) -> Any:
        """The QR code now (``.svg``, ``.issued_at``), or None."""

    async def pair_with_phone(self, phone: str) -> str:
        """Ask WhatsApp for a code to type on the phone."""

    async def logout(self) -> None:
        """Unlink, forget the device and start a fresh pairing."""

    async def reconnect(self) -> None:
        """Connect again now, without waiting for the backoff."""


# ---------------------------------------------------------------------------------------------------- reading


def _kind(name: str) -> channel_registry.ChannelKind:
    found = channel_registry.kind(name)
    if found is None:
        known = ", ".join(k.name for k in channel_registry.PHONE_CHANNELS)
        raise NotFound(f"there is no channel called {name!r}; choose one of {known}")
    return found


def _adapter(services: AppServices, name: str) -> ChannelAdapter | None:
    return services.ctx.channels.get(name) if services.channels is not None else None


def _controls(adapter: object) -> WhatsAppControls | None:
    return adapter if isinstance(adapter, WhatsAppControls) else None


def _host(services: AppServices) -> ChannelControl:
    if services.channels is None:
        raise ConfigError(START_FIRST)
    return services.channels


async def list_channels(services: AppServices) -> list[ChannelView]:
    """Every phone channel with its health, waiting sends and paired chats."""
    waiting = await delivery_attempts.waiting_counts(services.ctx.db)
    chats = await _chats_by_channel(services)
    return [await _view(services, k.name, waiting, chats) for k in channel_registry.PHONE_CHANNELS]


async def get_channel(services: AppServices, name: str) -> ChannelView:
    """One phone channel."""
    _kind(name)
    waiting = await delivery_attempts.waiting_counts(services.ctx.db)
    return await _view(services, name, waiting, await _chats_by_channel(services))


async def _view(services: AppServices, name: str, waiting: dict[str, int],
                chats: dict[str, list[PairedChat]]) -> ChannelView:
    db = services.ctx.db
    adapter = _adapter(services, name)
    set_up = await _is_set_up(services, name)
    enabled = await channel_registry.is_enabled(db, name)
    view = ChannelView(
        name=name, title=_kind(name).title, enabled=enabled, running=adapter is not None, set_up=set_up,
        status=_status(services, name, adapter, enabled=enabled, set_up=set_up), waiting=waiting.get(name, 0),
        chats=chats.get(name, []), pairing_code=await _pending_code(services, name, adapter),
    )
    if name == WHATSAPP:
        view.mode = await whatsapp_mode(services)
        controls = _controls(adapter)
        if controls is not None:
            view.qr = _qr_view(controls.qr)
    else:
        view.bot = await _saved_bot(services)
        view.privacy_note = _privacy_note(view.bot)
        view.api_base_url = services.settings.telegram_api_base_url
    return view


def _status(services: AppServices, name: str, adapter: ChannelAdapter | None, *, enabled: bool,
            set_up: bool) -> LinkStatus:
    if adapter is not None:
        status = adapter.status()
        return LinkStatus(status.state, status.detail, status.account, status.retry_at, dict(status.extra))
    component = services.state.components.get(f"channel:{name}", "")
    if enabled and component.startswith("failed"):
        return LinkStatus("failed", component.removeprefix("failed").lstrip(": ") or "it could not start")
    if enabled and services.channels is None:
        return LinkStatus("stopped", "NanoClaw is not running; it starts with NanoClaw")
    return LinkStatus("stopped" if set_up or enabled else "not_paired", "turned off" if set_up else "")


def _qr_view(qr: Any) -> QrView | None:
    svg = getattr(qr, "svg", None) if qr is not None else None
    return QrView(svg=str(svg), issued_at=str(getattr(qr, "issued_at", "") or "")) if svg else None


async def _is_set_up(services: AppServices, name: str) -> bool:
    if name == WHATSAPP:
        return await app_state.get(services.ctx.db, NUMBER_KEY) is not None
    if services.secrets.available:
        try:
            return await services.secrets.get(TOKEN_SECRET) is not None
        except NanoClawError as err:
            log.warning("channels: cannot tell whether a Telegram token is saved: %s", err)
    return await app_state.get(services.ctx.db, BOT_KEY) is not None


async def _chats_by_channel(services: AppServices) -> dict[str, list[PairedChat]]:
    db = services.ctx.db
    names = {a.id: a.name for a in await agents_db.list_all(db)}
    found: dict[str, list[PairedChat]] = {}
    for chat in await messaging.list_all(db):
        if channel_registry.kind(chat.channel_type) is None:
            continue
        agents = [names.get(w.agent_group_id, w.agent_group_id) for w in await messaging.wirings_for(db, chat.id)]
        found.setdefault(chat.channel_type, []).append(PairedChat(
            id=chat.id, title=chat.name or chat.platform_id, platform_id=chat.platform_id,
            is_group=bool(chat.is_group), agents=agents))
    return found


async def _pending_code(services: AppServices, name: str, adapter: ChannelAdapter | None) -> PairingCodeView | None:
    codes = [c for c in await pairing.pending(services.ctx.db, name) if c.intent == pairing.OWNER_INTENT]
    if not codes:
        return None
    code = codes[-1]
    return PairingCodeView(code.code, code.channel_type, code.intent, code.created_at,
                           await _send_to(services, name, adapter))


async def _send_to(services: AppServices, name: str, adapter: ChannelAdapter | None) -> str | None:
    if adapter is not None and adapter.status().account:
        return adapter.status().account
    if name == TELEGRAM:
        bot = await _saved_bot(services)
        return f"@{bot.username}" if bot is not None else None
    number = await app_state.get(services.ctx.db, NUMBER_KEY)
    return f"+{number}" if number else None


async def whatsapp_mode(services: AppServices) -> str:
    """The saved WhatsApp mode (``self`` or ``dedicated``)."""
    mode = await app_state.get(services.ctx.db, MODE_KEY)
    return mode if mode in MODES else DEFAULT_MODE


async def _saved_bot(services: AppServices) -> BotView | None:
    raw = await app_state.get(services.ctx.db, BOT_KEY)
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return BotView(id=int(data["id"]), username=str(data["username"]), name=str(data["name"]),
                       can_join_groups=bool(data["can_join_groups"]),
                       can_read_all_group_messages=bool(data["can_read_all_group_messages"]))
    except (ValueError, KeyError, TypeError):
        log.warning("channels: ignoring an unreadable saved Telegram bot %r", raw[:200])
        return None


def _privacy_note(bot: BotView | None) -> str | None:
    if bot is None or bot.can_read_all_group_messages:
        return None
    return PRIVACY_NOTE.format(username=bot.username)


def _changed(services: AppServices, name: str) -> None:
    """Open pages refresh the channel (link changes arrive as ``channel.status`` from the adapter itself)."""
    services.ctx.events.publish("channels.changed", channel_type=name)


# ---------------------------------------------------------------------------------------------------- starting


async def _start(services: AppServices, name: str, *, restart: bool = False) -> None:
    """Start the channel in the running host (again when ``restart``); a failure turns it back off."""
    host = _host(services)
    if restart and _adapter(services, name) is not None:
        await host.stop_channel(name)
    try:
        await host.start_channel(name)
    except NanoClawError:
        await channel_registry.set_enabled(services.ctx.db, name, False)
        _changed(services, name)
        raise


async def enable_channel(services: AppServices, name: str) -> ChannelView:
    """Turn a channel that was set up before back on (WhatsApp in its saved mode)."""
    _kind(name)
    if name == WHATSAPP:
        return await enable_whatsapp(services, await whatsapp_mode(services))
    _host(services)
    if not await _is_set_up(services, name):
        raise UserError("Telegram has no bot token yet: paste the token from @BotFather first")
    await channel_registry.set_enabled(services.ctx.db, name, True)
    await _start(services, name)
    _changed(services, name)
    return await get_channel(services, name)


async def enable_whatsapp(services: AppServices, mode: str) -> ChannelView:
    """Keep the mode, turn WhatsApp on and start it: a QR code to scan follows (``channel.qr`` events).

    A different mode on a running channel restarts it, so the adapter binds (or stops binding) the self chat.
    """
    if mode not in MODES:
        raise UserError(f"choose how WhatsApp is used: {' or '.join(MODES)}")
    _host(services)
    db = services.ctx.db
    before = await app_state.get(db, MODE_KEY)
    await app_state.put(db, MODE_KEY, mode)
    await channel_registry.set_enabled(db, WHATSAPP, True)
    await _start(services, WHATSAPP, restart=before != mode)
    log.info("channels: WhatsApp turned on (%s number)", mode)
    _changed(services, WHATSAPP)
    return await get_channel(services, WHATSAPP)


def _whatsapp(services: AppServices) -> WhatsAppControls:
    _host(services)
    adapter = services.ctx.channels.get(WHATSAPP)
    if adapter is None:
        raise ConfigError("WhatsApp is turned off: turn it on first")
    controls = _controls(adapter)
    if controls is None:
        raise ConfigError("this WhatsApp connection cannot be paired from the app")
    return controls


async def whatsapp_qr(services: AppServices) -> QrView:
    """The QR code to scan now; ``svg`` is None while WhatsApp has not sent one (or the device is linked)."""
    return _qr_view(_whatsapp(services).qr) or QrView()


def clean_phone(phone: str) -> str:
    """A phone number as WhatsApp wants it: country code and number, digits only (``+49 170 1234567`` works)."""
    digits = _PHONE_CHARS.sub("", phone.strip())
    if digits.startswith("00"):
        digits = digits[2:]
    digits = digits.removeprefix("+")
    if not digits.isdigit() or not 7 <= len(digits) <= 15:
        raise UserError("type the phone number with its country code, for example +49 170 1234567")
    if digits.startswith("0"):
        raise UserError("start the number with its country code (for example +49 for Germany), not with 0")
    return digits


async def whatsapp_pair_phone(services: AppServices, phone: str) -> PhoneCode:
    """Ask WhatsApp for an 8-character code to type on the phone, instead of scanning the QR code."""
    digits = clean_phone(phone)
    code = await _whatsapp(services).pair_with_phone(digits)
    log.info("channels: WhatsApp phone-number code requested")
    return PhoneCode(code=code, phone=f"+{digits}")


async def whatsapp_logout(services: AppServices) -> ChannelView:
    """Unlink NanoClaw from the WhatsApp account; a fresh QR code follows to link again (or turn it off)."""
    await _whatsapp(services).logout()
    log.info("channels: WhatsApp logged out")
    _changed(services, WHATSAPP)
    return await get_channel(services, WHATSAPP)


async def whatsapp_reconnect(services: AppServices) -> ChannelView:
    """Connect again now (after another program took over, or once a block or an update is over)."""
    await _whatsapp(services).reconnect()
    log.info("channels: WhatsApp reconnecting on request")
    return await get_channel(services, WHATSAPP)


async def whatsapp_repair(services: AppServices) -> ChannelView:
    """Link again after a logout, a ban or a takeover: unlink what is left and show a new QR code."""
    _host(services)
    if services.ctx.channels.get(WHATSAPP) is None:
        return await enable_whatsapp(services, await whatsapp_mode(services))
    return await whatsapp_logout(services)


# ---------------------------------------------------------------------------------------------------- Telegram


def clean_token(token: str) -> str:
    """The token as BotFather gave it; a clear error for something else pasted."""
    clean = token.strip()
    if not clean:
        raise UserError("paste the token @BotFather sent you (it looks like 123456789:AAE…)")
    if not _TOKEN.fullmatch(clean):
        raise UserError("this does not look like a bot token: it looks like 123456789:AAE… — copy the whole token "
                        "from @BotFather's message, without spaces")
    return clean


async def set_telegram_token(services: AppServices, token: str) -> TelegramSetup:
    """Check the token with Telegram (``getMe``), keep it in the secret store, turn Telegram on and (re)start it.

    Nothing is kept when Telegram refuses the token. Without a running host the token is kept and Telegram starts
    with NanoClaw.
    """
    from nanoclaw_app.channels.telegram.setup import check_token

    clean = clean_token(token)
    if not services.secrets.available:
        raise ConfigError(f"NanoClaw cannot keep the token safely yet: {services.secrets.unavailable_reason}. Set a "
                          "passphrase for the secret store in Settings, then try again")
    info = await check_token(clean, services.settings.telegram_api_base_url)
    bot = BotView(id=int(info.id), username=str(info.username), name=str(info.name),
                  can_join_groups=bool(info.can_join_groups),
                  can_read_all_group_messages=bool(info.can_read_all_group_messages))
    previous = await services.secrets.get(TOKEN_SECRET)
    await put_secret(services, TOKEN_SECRET, clean, TOKEN_LABEL)
    db = services.ctx.db
    await app_state.put(db, BOT_KEY, json.dumps(dataclasses.asdict(bot)))
    await channel_registry.set_enabled(db, TELEGRAM, True)
    started = False
    if services.channels is not None:
        await _start(services, TELEGRAM, restart=previous != clean)
        started = True
    log.info("channels: Telegram token for @%s saved%s", bot.username, "" if started else " (starts with NanoClaw)")
    _changed(services, TELEGRAM)
    note = _privacy_note(bot)
    return TelegramSetup(bot=bot, privacy_mode=note is not None, privacy_note=note, started=started,
                         channel=await get_channel(services, TELEGRAM))


async def set_telegram_api_base_url(services: AppServices, url: str) -> ChannelView:
    """Use another Bot API server (a self-hosted ``telegram-bot-api``); empty means Telegram's own.

    A saved token is checked against the new server first, so a wrong address changes nothing; a running Telegram
    restarts on the new server.
    """
    from nanoclaw_app.channels.telegram.setup import check_token

    clean = url.strip().rstrip("/") or DEFAULT_TELEGRAM_API
    if not clean.startswith(("http://", "https://")) or " " in clean:
        raise UserError("the Bot API server address must start with http:// or https://, "
                        "for example http://localhost:8081")
    if ENV_PREFIX + "TELEGRAM_API_BASE_URL" in os.environ:
        raise UserError(f"{ENV_PREFIX}TELEGRAM_API_BASE_URL is set in NanoClaw's environment and overrides this "
                        "setting; change or remove the variable instead")
    if clean == services.settings.telegram_api_base_url:
        return await get_channel(services, TELEGRAM)
    token = await services.secrets.get(TOKEN_SECRET) if services.secrets.available else None
    if token is not None:
        await check_token(token, clean)
    paths = services.settings.paths
    load_settings(paths, telegram_api_base_url=clean)  # the whole file must stay valid
    save_settings(paths, {"telegram_api_base_url": clean})
    after = dataclasses.replace(services.settings, telegram_api_base_url=clean)
    if services.reload_settings is not None:
        await services.reload_settings(after)
    else:
        services.ctx.settings = after
    services.ctx.events.publish("settings.changed", changed=["telegram_api_base_url"], restart_needed=[])
    log.info("channels: Telegram Bot API server is now %s", clean)
    if _adapter(services, TELEGRAM) is not None:
        await _start(services, TELEGRAM, restart=True)
    _changed(services, TELEGRAM)
    return await get_channel(services, TELEGRAM)


# ---------------------------------------------------------------------------------------------------- both


async def new_pairing_code(services: AppServices, channel: str, intent: str = pairing.OWNER_INTENT
                           ) -> PairingCodeView:
    """A fresh 4-digit code to send from the phone chat to bind it (an older pending one stops working)."""
    _kind(channel)
    _host(services)
    if not await channel_registry.is_enabled(services.ctx.db, channel):
        raise UserError(f"{_kind(channel).title} is turned off: set it up first")
    code = await pairing.create_code(services.ctx.db, channel, intent)
    log.info("channels: new %s pairing code (%s)", channel, intent)
    services.ctx.events.publish("pairing.code", channel_type=channel)
    return PairingCodeView(code.code, code.channel_type, code.intent, code.created_at,
                           await _send_to(services, channel, _adapter(services, channel)))


async def disable_channel(services: AppServices, name: str, *, forget: bool = False) -> ChannelView:
    """Turn a channel off: it disconnects now and stays off after a restart.

    Its setup stays (the Telegram token, the linked WhatsApp device) unless ``forget``: then the token is deleted, or
    WhatsApp is unlinked. Pending pairing codes are withdrawn.
    """
    _kind(name)
    db = services.ctx.db
    adapter = _adapter(services, name)
    controls = _controls(adapter) if name == WHATSAPP else None
    if forget and controls is not None:
        await controls.logout()
    if services.channels is not None:
        await services.channels.stop_channel(name)
    await channel_registry.set_enabled(db, name, False)
    await pairing.cancel(db, name)
    if forget and name == TELEGRAM:
        if services.secrets.available and await services.secrets.get(TOKEN_SECRET) is not None:
            await delete_secret(services, TOKEN_SECRET)
        await app_state.delete(db, BOT_KEY)
    if forget and name == WHATSAPP and adapter is None:
        await _remove_device(services)
    log.info("channels: %s turned off%s", name, " and forgotten" if forget else "")
    _changed(services, name)
    return await get_channel(services, name)


async def _remove_device(services: AppServices) -> None:
    """Forget a linked WhatsApp device while WhatsApp is not running (the phone lists it until WhatsApp drops it)."""
    folder = services.settings.paths.channels / WHATSAPP
    for suffix in ("", "-wal", "-shm", "-journal"):
        (folder / f"device.db{suffix}").unlink(missing_ok=True)
    await app_state.delete(services.ctx.db, NUMBER_KEY)


STATE_WORDS = {
    "not_paired": "not set up", "pairing": "waiting for the QR code to be scanned", "connecting": "connecting",
    "connected": "connected", "reconnecting": "reconnecting", "logged_out": "logged out: link it again in the app",
    "banned": "blocked by the platform for now", "replaced": "taken over by another program",
    "failed": "needs attention", "stopped": "off",
}
"""A link state in a few plain words (the CLI's listing; the app has its own strings)."""
