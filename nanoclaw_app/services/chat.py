"""The owner's in-app chat: set it up, send into it, read it back, answer its cards, download its files.

The in-app user is ``webchat:owner``; their conversation is the ``webchat`` chat with platform id ``owner``. Messages
go through the host's router exactly like a WhatsApp or Telegram message, so wiring, access and approvals apply.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nanoclaw_app.channels.webchat.adapter import CHANNEL, OWNER_HANDLE, WebchatAdapter
from nanoclaw_app.channels.webchat.conversation import ChatLog, HistoryPage, NewFile
from nanoclaw_app.channels.webchat.files import clean_name, inline_ok
from nanoclaw_app.channels.webchat.model import ChatMessage
from nanoclaw_app.core.messages import InboundMessage, IncomingAttachment
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import messaging
from nanoclaw_app.db import users as users_db
from nanoclaw_app.db.messaging import WiringSpec
from nanoclaw_app.db.rows import AgentGroup
from nanoclaw_app.errors import ConfigError, NotFound, UserError
from nanoclaw_app.ids import new_id
from nanoclaw_app.services.context import AppServices

if TYPE_CHECKING:
    from nanoclaw_app.services.voice_notes import Heard

log = logging.getLogger(__name__)

OWNER_USER = f"{CHANNEL}:{OWNER_HANDLE}"
CHAT_NAME = "App chat"
"""The chat's name; the agent's destination for it is therefore ``app-chat``."""
MAX_FILES = 20
MAX_TEXT = 100_000
NO_AGENT = "No agent answers in this chat yet: finish setup (/setup) to create one."


@dataclass(frozen=True, slots=True)
class ChatFileDownload:
    """A file of a chat message, checked and ready to send."""

    path: Path
    name: str
    mime_type: str
    inline: bool


def _adapter(services: AppServices) -> WebchatAdapter:
    adapter = services.ctx.channels.get(CHANNEL)
    if not isinstance(adapter, WebchatAdapter):
        raise ConfigError("the in-app chat only works inside the running NanoClaw app (start it with `nanoclaw`)")
    return adapter


def _log(services: AppServices) -> ChatLog:
    """The running adapter's log, or (in a CLI process) one over the same table and folder."""
    adapter = services.ctx.channels.get(CHANNEL)
    if isinstance(adapter, WebchatAdapter):
        return adapter.log
    ctx = services.ctx
    return ChatLog(ctx.db, ctx.events, ctx.settings.paths.home / CHANNEL, ctx.store.run_io)


async def ensure_owner_chat(services: AppServices, agent_group_id: str) -> str:
    """The owner's chat exists and ``agent_group_id`` answers every message in it; returns its messaging group id.

    Idempotent. ``webchat:owner`` becomes the owner when nobody is yet; when someone else already is, it becomes a
    member of the agent instead, so the person at the app can still talk to it.
    """
    db = services.ctx.db
    if await agents_db.get(db, agent_group_id) is None:
        raise NotFound(f"there is no agent {agent_group_id}")
    if await users_db.get(db, OWNER_USER) is None:
        await users_db.upsert(db, OWNER_USER, CHANNEL, "Owner")
    owners = await users_db.owners(db)
    if not owners:
        await users_db.grant(db, OWNER_USER, "owner")
        log.info("the in-app user is the owner (there was none yet)")
    elif OWNER_USER not in owners:
        await users_db.add_member(db, OWNER_USER, agent_group_id)
    chat = await messaging.create(db, CHANNEL, OWNER_HANDLE, name=CHAT_NAME, is_group=False)
    if await messaging.wiring(db, chat.id, agent_group_id) is None:
        await messaging.wire(db, chat.id, agent_group_id, WiringSpec(engage_mode="pattern", engage_pattern="."))
        services.ctx.events.publish("chat.wired", messaging_group_id=chat.id, agent_group_id=agent_group_id)
    await users_db.cache_dm(db, OWNER_USER, CHANNEL, chat.id)
    return chat.id


async def chat_agents(services: AppServices, platform_id: str = OWNER_HANDLE) -> list[AgentGroup]:
    """The agents that answer in the chat (none until setup wired one)."""
    db = services.ctx.db
    chat = await messaging.find(db, CHANNEL, platform_id)
    if chat is None:
        return []
    found = [await agents_db.get(db, w.agent_group_id) for w in await messaging.wirings_for(db, chat.id)]
    return [a for a in found if a is not None]


def _check_files(services: AppServices, files: Sequence[NewFile]) -> None:
    if len(files) > MAX_FILES:
        raise UserError(f"send at most {MAX_FILES} files at once")
    cap = services.settings.max_attachment_bytes
    for name, data, _ in files:
        if len(data) > cap:
            raise UserError(f"{name!r} is {len(data) / 1e6:.1f} MB; files may be at most {cap / 1e6:.0f} MB "
                            "(change max_attachment_bytes in Settings)")


def _kind(mime_type: str) -> str:
    major = mime_type.split("/", 1)[0]
    return major if major in ("image", "audio", "video") else "document"


async def send_message(
    services: AppServices, text: str, files: Sequence[NewFile] = (), platform_id: str = OWNER_HANDLE
) -> ChatMessage:
    """Store the person's message (it shows at once) and hand it to the router as the owner's DM.

    Returns the bubble as it looks after routing: ``waiting`` when the agent's session could not take it yet.

    ``files`` are ``(name, data, MIME type)``; they reach the session's ``inbox/`` through the router.
    """
    text = text.strip()
    if not text and not files:
        raise UserError("type a message or attach a file")
    if len(text) > MAX_TEXT:
        raise UserError(f"the message is too long ({len(text)} characters; at most {MAX_TEXT})")
    _check_files(services, files)
    files = [(clean_name(name), data, mime or "application/octet-stream") for name, data, mime in files]
    adapter = _adapter(services)
    db = services.ctx.db
    chat = await messaging.find(db, CHANNEL, platform_id)
    if chat is None or not await messaging.wirings_for(db, chat.id):
        raise UserError(NO_AGENT)
    user = await users_db.get(db, OWNER_USER)
    sender_name = (user.display_name if user is not None else None) or "Owner"
    stored, _ = await adapter.log.add(platform_id=platform_id, direction="in", sender=OWNER_USER, text=text,
                                      files=files)
    attachments = tuple(
        IncomingAttachment(name=f.name, data=data, mime_type=f.mime_type, kind=_kind(f.mime_type))
        for f, (_, data, _) in zip(stored.files, files, strict=True)
    )
    await adapter.host.on_inbound(InboundMessage(
        channel_type=CHANNEL, platform_id=platform_id, message_id=stored.id, sender_id=OWNER_HANDLE,
        sender_name=sender_name, text=text, is_group=False, is_mention=True, chat_name=chat.name,
        timestamp=stored.created_at, attachments=attachments,
    ))
    return await adapter.log.get(stored.id) or stored


async def show_transcripts(services: AppServices, msg: InboundMessage, heard: Sequence[Heard]) -> None:
    """Show what was heard in a recording sent in the app under its bubble (other channels' notes are not here)."""
    if msg.channel_type != CHANNEL:
        return
    log_ = _adapter(services).log
    for note in heard:
        await log_.change(platform_id=msg.platform_id, target_id=msg.message_id, kind="transcript",
                          text=json.dumps(note.to_dict(), ensure_ascii=False), change_id=new_id("msg"))


async def history(
    services: AppServices, platform_id: str = OWNER_HANDLE, before: str | None = None, limit: int = 50
) -> HistoryPage:
    """Bubbles oldest first, ending before the message ``before`` (the newest page when None)."""
    return await _log(services).history(platform_id, before=before, limit=limit)


async def answer_card(services: AppServices, question_id: str, value: str) -> ChatMessage:
    """Click an option of a question or approval card as the in-app user; the card shows the choice."""
    adapter = _adapter(services)
    message = await adapter.log.open_card(question_id, value)
    await adapter.host.on_action(question_id, value, OWNER_USER)
    return await adapter.log.set_answer(message.id, value)


async def file_download(services: AppServices, message_id: str, name: str) -> ChatFileDownload:
    """A file of a chat message; only raster images may be shown inline, everything else is downloaded."""
    path, mime_type = await _log(services).file(message_id, name)
    return ChatFileDownload(path=path, name=name, mime_type=mime_type, inline=inline_ok(mime_type))
