"""How the channel registry builds the WhatsApp adapter (the only entry into this package from outside)."""

from __future__ import annotations

import logging

from nanoclaw_app.channels.manifest import ChannelDeps
from nanoclaw_app.core.adapter_contract import ChannelAdapter
from nanoclaw_app.errors import ConfigError

log = logging.getLogger(__name__)


async def build(deps: ChannelDeps) -> ChannelAdapter | None:
    """The adapter over the real neonize client; WhatsApp needs no credentials, pairing happens once it runs.

    Importing the adapter loads neonize and its native library; when that fails (a broken install, or a frozen
    build without the library) the user gets the reason instead of a traceback.
    """
    try:
        from nanoclaw_app.channels.whatsapp.adapter import WhatsAppAdapter
    except Exception as err:  # ImportError, OSError from the native library, neonize's own download attempt
        log.exception("neonize could not be loaded")
        raise ConfigError(
            "WhatsApp cannot start because its connection library (neonize) could not be loaded: "
            f"{type(err).__name__}: {err}. Reinstall or update NanoClaw to repair it."
        ) from err
    return WhatsAppAdapter(deps)
