"""The pairing QR code as the app shows it: an inline SVG rendered with segno from WhatsApp's ``2@…`` string."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QrCode:
    """One QR code WhatsApp issued; it rotates about every 20 seconds until scanned."""

    data: str
    """The raw ``2@…`` text the phone reads."""
    svg: str
    """An ``<svg …>`` element, ready to put into the page."""
    issued_at: str
    """ISO time it arrived (the app shows how fresh it is)."""


def render_svg(data: str) -> str:
    """An inline SVG of ``data``: black on white with a quiet zone, so phones read it on dark themes too."""
    import segno

    code = segno.make_qr(data, error="l")
    svg: str = code.svg_inline(scale=6, border=4, dark="#000000", light="#ffffff", title="WhatsApp pairing code")
    return svg
