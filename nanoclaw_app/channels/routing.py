"""Handing a received message to the host, with a few tries when the failure is passing (a busy database).

A channel's handlers must never raise into the platform library, and a message must not vanish without a trace:
after the last try it is logged as dropped, with who sent it where.
"""

from __future__ import annotations

import asyncio
import logging

from nanoclaw_app.core.adapter_contract import HostCallbacks
from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.errors import TransientError

ROUTE_ATTEMPTS = 3
"""Routing is tried again after a transient failure before the message is given up."""


async def route(host: HostCallbacks, message: InboundMessage, log: logging.Logger) -> None:
    """Give ``message`` to the host, or log it as dropped (on the channel's ``log``, so its records stay its own)."""
    channel = message.channel_type
    for attempt in range(1, ROUTE_ATTEMPTS + 1):
        try:
            await host.on_inbound(message)
            return
        except TransientError as err:
            if attempt == ROUTE_ATTEMPTS:
                break
            log.warning("routing %s message %s failed (%s); trying again", channel, message.message_id, err)
            await asyncio.sleep(0.5 * attempt)
        except Exception:
            log.exception("routing %s message %s failed", channel, message.message_id)
            break
    log.error("%s message %s from %s in %s was dropped: routing it failed (see the error above)", channel,
              message.message_id, message.sender_id, message.platform_id)
