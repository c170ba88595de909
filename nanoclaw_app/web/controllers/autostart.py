"""Start NanoClaw when I log in: the switch on the wizard's last step and the Settings page.

The answer is always read back from the OS's entry (:mod:`nanoclaw_app.desktop.autostart`), never remembered here:
switching it off in the desktop's own settings shows as off in the app too.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from litestar import Controller, get, put
from litestar.params import JSONBody
from litestar.types import ControllerRouterHandler

from nanoclaw_app.desktop.autostart import AutostartState, autostart_for, read_state, set_enabled
from nanoclaw_app.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class AutostartChange:
    """Start at login, or not."""

    enabled: bool


class AutostartController(Controller):
    """``/api/autostart``."""

    @get("/api/autostart", summary="Whether NanoClaw starts when you log in to this computer")
    async def read(self) -> AutostartState:
        """``supported`` is false on a system NanoClaw knows no start-at-login entry for."""
        return await asyncio.to_thread(read_state, autostart_for())

    @put("/api/autostart", summary="Start NanoClaw when you log in, or stop doing so")
    async def change(self, data: JSONBody[AutostartChange]) -> AutostartState:
        """Writes or removes the OS's own entry, then reads it back."""
        entry = autostart_for()
        if entry is None:
            raise UserError("NanoClaw cannot start by itself at login on this system; start it yourself after "
                            "logging in.")
        try:
            state = await asyncio.to_thread(set_enabled, entry, data.enabled)
        except OSError as err:
            log.warning("could not %s the start at login (%s): %s", "set up" if data.enabled else "remove",
                        entry.where, err)
            raise UserError(f"Could not change the start at login: {err.strerror or err} ({entry.where}).") from err
        log.info("start at login %s (%s)", "on" if state.enabled else "off", state.where)
        return state


ROUTES: list[ControllerRouterHandler] = [AutostartController]
