"""The WhatsApp channel as the app lists it: its setup actions and how its adapter is built."""

from __future__ import annotations

from nanoclaw_app.channels.manifest import ActionField, ChannelDeps, ChannelManifest, SetupAction, library_check
from nanoclaw_app.channels.whatsapp import setup
from nanoclaw_app.channels.whatsapp.settings import WhatsAppSettings
from nanoclaw_app.core.adapter_contract import ChannelAdapter


async def _build(deps: ChannelDeps) -> ChannelAdapter | None:
    from nanoclaw_app.channels.whatsapp.factory import build

    return await build(deps)


MANIFEST = ChannelManifest(
    name="whatsapp",
    title="WhatsApp",
    build=_build,
    setup=setup.WhatsAppSetup(),
    actions={
        "enable": SetupAction(setup.turn_on, "Turn WhatsApp on in a mode and start pairing",
                              fields=(ActionField("mode", "self or dedicated"),)),
        "qr": SetupAction(setup.show_qr, "The WhatsApp QR code to scan now", method="GET"),
        "phone-code": SetupAction(setup.phone_code, "Link WhatsApp with a phone-number code",
                                  fields=(ActionField("phone", "the phone number with its country code"),)),
        "logout": SetupAction(setup.logout, "Unlink NanoClaw from WhatsApp"),
        "reconnect": SetupAction(setup.reconnect, "Connect WhatsApp again now"),
        "repair": SetupAction(setup.repair, "Link WhatsApp again"),
    },
    in_wizard=True,
    pair_hint=setup.pair_hint,
    settings=WhatsAppSettings,
    # A frozen build must carry its native library; musl Linux has no wheel.
    self_check=library_check("WhatsApp", "neonize", "nanoclaw_app.channels.whatsapp.native",
                             fix="reinstall NanoClaw; WhatsApp needs a glibc Linux, macOS or Windows",
                             part="native library"),
)
