"""Setting WhatsApp up from the app and the CLI: which number, the live QR code, the phone-number code, logout.

WhatsApp needs no credentials: turning it on starts the adapter, which shows QR codes until the phone scans one. The
adapter is reached through :class:`WhatsAppControls` (duck-typed), so this module never loads neonize.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from nanoclaw_app.channels.manifest import SetupContext
from nanoclaw_app.channels.whatsapp.state_keys import DEDICATED_MODE, MODE_KEY, NUMBER_KEY, SELF_MODE
from nanoclaw_app.db import app_state
from nanoclaw_app.errors import ConfigError, UserError

log = logging.getLogger(__name__)

MODES = (SELF_MODE, DEDICATED_MODE)
DEFAULT_MODE = DEDICATED_MODE
_PHONE_CHARS = re.compile(r"[\s()./-]")


@dataclass
class QrView:
    """The QR code to scan now (``svg`` is None while there is none)."""

    svg: str | None = None
    issued_at: str | None = None


@dataclass
class PhoneCode:
    """WhatsApp's 8-character code for linking by phone number."""

    code: str
    phone: str


@runtime_checkable
class WhatsAppControls(Protocol):
    """What setup uses of the WhatsApp adapter beyond the adapter contract."""

    @property
    def qr(self) -> Any:
        """The QR code now (``.svg``, ``.issued_at``), or None."""

    async def pair_with_phone(self, phone: str) -> str:
        """Ask WhatsApp for a code to type on the phone."""

    async def logout(self) -> None:
        """Unlink, forget the device and start a fresh pairing."""

    async def reconnect(self) -> None:
        """Connect again now, without waiting for the backoff."""


def _controls(ctx: SetupContext) -> WhatsAppControls | None:
    adapter = ctx.adapter
    return adapter if isinstance(adapter, WhatsAppControls) else None


def _running(ctx: SetupContext) -> WhatsAppControls:
    ctx.require_host()
    if ctx.adapter is None:
        raise ConfigError("WhatsApp is turned off: turn it on first")
    controls = _controls(ctx)
    if controls is None:
        raise ConfigError("this WhatsApp connection cannot be paired from the app")
    return controls


def qr_view(qr: Any) -> QrView | None:
    """The adapter's QR code as the page shows it."""
    svg = getattr(qr, "svg", None) if qr is not None else None
    return QrView(svg=str(svg), issued_at=str(getattr(qr, "issued_at", "") or "")) if svg else None


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


async def saved_mode(ctx: SetupContext) -> str:
    """The saved mode (``self`` or ``dedicated``)."""
    mode = await app_state.get(ctx.db, MODE_KEY)
    return mode if mode in MODES else DEFAULT_MODE


def _text(body: Mapping[str, Any], key: str, missing: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise UserError(missing)
    return value


# ---------------------------------------------------------------------------------------------------- actions


async def turn_on(ctx: SetupContext, body: Mapping[str, Any]) -> None:
    """Keep the mode, turn WhatsApp on and start it: a QR code to scan follows (``channel.qr`` events).

    A different mode on a running channel restarts it, so the adapter binds (or stops binding) the self chat.
    """
    mode = body.get("mode")
    if mode not in MODES:
        raise UserError(f"choose how WhatsApp is used: {' or '.join(MODES)}")
    ctx.require_host()
    before = await app_state.get(ctx.db, MODE_KEY)
    await app_state.put(ctx.db, MODE_KEY, str(mode))
    await ctx.set_enabled(True)
    await ctx.start(restart=before != mode)
    log.info("channels: WhatsApp turned on (%s number)", mode)
    ctx.changed()


async def show_qr(ctx: SetupContext, body: Mapping[str, Any]) -> QrView:
    """The QR code to scan now; ``svg`` is None while WhatsApp has not sent one (or the device is linked)."""
    return qr_view(_running(ctx).qr) or QrView()


async def phone_code(ctx: SetupContext, body: Mapping[str, Any]) -> PhoneCode:
    """Ask WhatsApp for an 8-character code to type on the phone, instead of scanning the QR code."""
    digits = clean_phone(_text(body, "phone", "type the phone number with its country code, for example "
                                              "+49 170 1234567"))
    code = await _running(ctx).pair_with_phone(digits)
    log.info("channels: WhatsApp phone-number code requested")
    return PhoneCode(code=code, phone=f"+{digits}")


async def logout(ctx: SetupContext, body: Mapping[str, Any]) -> None:
    """Unlink NanoClaw from the WhatsApp account; a fresh QR code follows to link again (or turn it off)."""
    await _running(ctx).logout()
    log.info("channels: WhatsApp logged out")
    ctx.changed()


async def reconnect(ctx: SetupContext, body: Mapping[str, Any]) -> None:
    """Connect again now (after another program took over, or once a block or an update is over)."""
    await _running(ctx).reconnect()
    log.info("channels: WhatsApp reconnecting on request")


async def repair(ctx: SetupContext, body: Mapping[str, Any]) -> None:
    """Link again after a logout, a ban or a takeover: unlink what is left and show a new QR code."""
    ctx.require_host()
    if ctx.adapter is None:
        await turn_on(ctx, {"mode": await saved_mode(ctx)})
        return
    await logout(ctx, body)


# ---------------------------------------------------------------------------------------------------- the setup


class WhatsAppSetup:
    """The WhatsApp half of the channels service."""

    async def is_set_up(self, ctx: SetupContext) -> bool:
        """A device is linked (its number is known)."""
        return await app_state.get(ctx.db, NUMBER_KEY) is not None

    async def details(self, ctx: SetupContext) -> dict[str, Any]:
        """The mode, and the QR code while one is shown."""
        controls = _controls(ctx)
        qr = qr_view(controls.qr) if controls is not None else None
        return {"mode": await saved_mode(ctx), "qr": None if qr is None else {"svg": qr.svg,
                                                                               "issued_at": qr.issued_at}}

    async def send_to(self, ctx: SetupContext) -> str | None:
        """The linked number."""
        number = await app_state.get(ctx.db, NUMBER_KEY)
        return f"+{number}" if number else None

    async def not_working(self, ctx: SetupContext) -> str | None:
        """Working means linked and connected."""
        adapter = ctx.adapter
        if adapter is None or adapter.status().state != "connected":
            return "WhatsApp is not linked yet: scan the QR code with your phone"
        return None

    async def enable(self, ctx: SetupContext) -> None:
        """Turn on in the saved mode."""
        await turn_on(ctx, {"mode": await saved_mode(ctx)})

    async def forget(self, ctx: SetupContext) -> None:
        """Unlink the device: through WhatsApp while it runs, else by deleting it (the phone drops it later)."""
        controls = _controls(ctx)
        if controls is not None:
            await controls.logout()
            return
        folder = ctx.settings.paths.channels / "whatsapp"
        for suffix in ("", "-wal", "-shm", "-journal"):
            (folder / f"device.db{suffix}").unlink(missing_ok=True)
        await app_state.delete(ctx.db, NUMBER_KEY)


def pair_hint(code: str, send_to: str | None) -> str:
    """Where the owner sends a pairing code."""
    where = f"to {send_to}" if send_to else "to the assistant's number"
    return f"Send {code} {where} from your own WhatsApp."
