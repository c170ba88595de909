"""The in-app chat as a channel: always connected, no credentials; the "platform" is our own table and event bus.

Delivering stores the message (files under ``<home>/webchat/``) and publishes it; the page shows it live. Deliveries
are idempotent (the stored id derives from ``delivery_id``), so delivery may resend after a crash without doubling.

Events published here besides those of :mod:`.conversation`: ``chat.typing`` ``{"platform_id"}`` when the router
hands the agent a message, and ``chat.activity`` from :mod:`.activity`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from nanoclaw_app.channels.webchat.activity import ActivityTracker
from nanoclaw_app.channels.webchat.conversation import ChatLog, delivery_message_id
from nanoclaw_app.core.adapter_contract import ChannelAdapter, HostCallbacks
from nanoclaw_app.core.events import EventBus
from nanoclaw_app.core.messages import OutboundMessage
from nanoclaw_app.db.database import Database
from nanoclaw_app.errors import ConfigError, UserError
from nanoclaw_app.sessions.store import SessionStore

log = logging.getLogger(__name__)

CHANNEL = "webchat"
OWNER_HANDLE = "owner"
"""The in-app user is ``webchat:owner`` and their conversation's platform id is ``owner``."""


class WebchatAdapter(ChannelAdapter):
    """The chat in the app window.

    ``store`` (the host's session store) runs file work off the event loop and lets the activity tracker read what
    the runner is doing; without it, activity is limited to container events.
    """

    channel_type = CHANNEL
    supports_threads = False
    idempotent_delivery = True

    def __init__(self, db: Database, events: EventBus, files_dir: Path, *, store: SessionStore | None = None) -> None:
        self.log = ChatLog(db, events, files_dir, store.run_io if store is not None else None, channel_type=CHANNEL)
        self._events = events
        self._activity = ActivityTracker(db, events, store, CHANNEL, on_held=self.log.refresh)
        self._host: HostCallbacks | None = None

    @property
    def host(self) -> HostCallbacks:
        """The host callbacks received in :meth:`setup` (the chat service routes the person's messages through them)."""
        if self._host is None:
            raise ConfigError("the in-app chat is not running yet; wait until NanoClaw has started")
        return self._host

    async def setup(self, host: HostCallbacks) -> None:
        """Nothing to connect to: remember the host and start following the agent's activity."""
        self._host = host
        await self._activity.start()

    async def teardown(self) -> None:
        """Stop following activity; safe to call twice."""
        await self._activity.stop()
        self._host = None

    def is_connected(self) -> bool:
        """Always up while the host runs."""
        return self._host is not None

    async def deliver(self, platform_id: str, thread_id: str | None, message: OutboundMessage) -> str | None:
        """Store and publish; edits and reactions change their target and return its id."""
        message_id = delivery_message_id(platform_id, message.delivery_id)
        if message.kind in ("edit", "reaction"):
            if not message.target_message_id:
                raise UserError(f"a {message.kind} needs the message it changes")
            text = message.text if message.kind == "edit" else (message.emoji or "")
            await self.log.change(platform_id=platform_id, target_id=message.target_message_id, kind=message.kind,
                                  text=text, change_id=message_id)
            return message.target_message_id if message.kind == "edit" else message_id
        card = None
        if message.kind == "question":
            card = {"question_id": message.question_id, "title": message.title or "",
                    "options": [o.to_dict() for o in message.options], "answer": None}
        elif message.kind == "card":
            card = {"title": message.title or "", "links": [dict(link) for link in message.links]}
        files = [(f.name, f.data, f.mime_type) for f in message.files]
        stored, _ = await self.log.add(platform_id=platform_id, direction="out", kind=message.kind, text=message.text,
                                       files=files, card=card, message_id=message_id)
        return stored.id

    async def set_typing(self, platform_id: str, thread_id: str | None) -> None:
        """The page shows "… is typing" until a reply or a timeout."""
        self._events.publish("chat.typing", platform_id=platform_id)

    async def open_dm(self, user_handle: str) -> str | None:
        """The conversation of a webchat user is addressed by their handle (``owner``)."""
        return user_handle
