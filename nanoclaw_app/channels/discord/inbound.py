"""Discord events → the host: messages become ``InboundMessage``s, button clicks become card answers.

A DM is its own chat (its channel id); a server channel is a group chat, and a thread in it carries the thread's id
as ``thread_id`` under its channel's id, so a threaded conversation gets its own session. The bot's mention is taken
out of the text (it addresses the bot; ``is_mention`` says so); other people's mentions read as ``@name``.

Edited messages are not passed on: the agent already answered the original. Messages from bots (this one included)
are dropped so two bots cannot talk in a loop. Attachments are downloaded up to the app's size limit; their names and
types come from strangers, so a name is reduced to a plain file name and a type is believed only when the bytes agree.
Handlers never raise into discord.py: a message that cannot be read or routed is logged with its id.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import discord

from nanoclaw_app.channels.discord.components import parse_custom_id
from nanoclaw_app.channels.discord.connection import NETWORK_ERRORS, Bot
from nanoclaw_app.channels.discord.link import CHANNEL
from nanoclaw_app.channels.discord.outbound import Sender
from nanoclaw_app.channels.received_files import file_type, not_kept, safe_name, too_large, with_notes
from nanoclaw_app.channels.routing import route
from nanoclaw_app.core import cards
from nanoclaw_app.core.adapter_contract import HostCallbacks
from nanoclaw_app.core.messages import InboundMessage, IncomingAttachment, Quoted
from nanoclaw_app.db.database import Database
from nanoclaw_app.timeutil import iso

log = logging.getLogger(__name__)

ALREADY_ANSWERED = "Already answered."
NOT_ACTIVE = "This card is no longer active."
FAILED = "That did not work; please answer in the NanoClaw app."
PERSON_MESSAGES = frozenset({discord.MessageType.default, discord.MessageType.reply})


def mentions_bot(message: discord.Message, bot_id: int) -> bool:
    """Whether a server message addresses the bot: ``@bot``, its role, or a reply to one of its messages."""
    if any(user.id == bot_id for user in message.mentions):
        return True
    guild = message.guild
    me = guild.me if guild is not None else None
    if me is not None and any(role.is_bot_managed() and role in me.roles for role in message.role_mentions):
        return True
    resolved = message.reference.resolved if message.reference is not None else None
    return isinstance(resolved, discord.Message) and resolved.author.id == bot_id


def readable_text(message: discord.Message, bot_id: int) -> str:
    """The text with the bot's mention removed and other people's mentions as ``@name``."""
    text = re.sub(rf"<@!?{bot_id}>", " ", message.content)
    for user in message.mentions:
        if user.id != bot_id:
            text = re.sub(rf"<@!?{user.id}>", f"@{user.display_name}", text)
    lines = [" ".join(line.split()) for line in text.strip().splitlines()]
    return "\n".join(lines).strip()


def quoted(message: discord.Message) -> Quoted | None:
    """The message this one replies to, when Discord sent it along."""
    resolved = message.reference.resolved if message.reference is not None else None
    if not isinstance(resolved, discord.Message):
        return None
    return Quoted(text=resolved.content, sender=resolved.author.display_name, message_id=str(resolved.id))


def chat_of(channel: Any) -> tuple[str, str | None, bool, str | None]:
    """``(platform id, thread id, is group, chat name)`` of the channel a message arrived in."""
    if isinstance(channel, discord.Thread):
        parent = channel.parent
        name = f"#{parent.name}" if isinstance(parent, discord.abc.GuildChannel) else None
        return str(channel.parent_id), str(channel.id), True, _with_guild(channel.guild, name)
    if isinstance(channel, discord.abc.GuildChannel):
        return str(channel.id), None, True, _with_guild(channel.guild, f"#{channel.name}")
    return str(channel.id), None, False, None


def _with_guild(guild: discord.Guild | None, name: str | None) -> str | None:
    if name is None:
        return None
    return f"{guild.name} {name}" if guild is not None and guild.name else name


class Inbound:
    """discord.py handlers feeding the host."""

    def __init__(self, db: Database, host: HostCallbacks, sender: Sender, client: Callable[[], Bot], *,
                 max_attachment_bytes: int) -> None:
        self._db = db
        self._host = host
        self._sender = sender
        self._client = client
        self._max_bytes = max_attachment_bytes
        self._names: dict[str, str] = {}

    def attach(self, client: Bot) -> None:
        """Receive this client's messages and clicks."""
        client.on_person_message = self.on_message
        client.on_click = self.on_click

    # ------------------------------------------------------------------------------------------ messages

    async def on_message(self, message: discord.Message) -> None:
        """A new message where the bot can see it."""
        try:
            inbound = await self.convert(message)
        except Exception:
            log.exception("discord message %s in channel %s could not be read; it was not passed on", message.id,
                          message.channel.id)
            return
        if inbound is not None:
            await route(self._host, inbound, log)

    async def convert(self, message: discord.Message) -> InboundMessage | None:
        """The neutral message, or None for what is not a person's message (bots, system notices, empty)."""
        if message.author.bot or message.type not in PERSON_MESSAGES:
            return None
        me = self._client().user
        bot_id = me.id if me is not None else 0
        platform_id, thread_id, is_group, chat_name = chat_of(message.channel)
        if is_group and chat_name:
            await self._chat_seen(platform_id, chat_name)
        text = readable_text(message, bot_id)
        attachments, notes = await self._attachments(message)
        if notes:
            text = with_notes(text, notes)
        if not text and not attachments:
            return None  # nothing readable (without the Message Content intent, unaddressed messages are empty)
        return InboundMessage(
            channel_type=CHANNEL,
            platform_id=platform_id,
            message_id=str(message.id),
            sender_id=str(message.author.id),
            text=text,
            sender_name=message.author.display_name,
            thread_id=thread_id,
            is_group=is_group,
            is_mention=not is_group or mentions_bot(message, bot_id),
            chat_name=chat_name,
            timestamp=iso(message.created_at),
            reply_to=quoted(message),
            attachments=tuple(attachments),
            extra={"username": message.author.name},
        )

    async def _chat_seen(self, platform_id: str, name: str) -> None:
        if self._names.get(platform_id) == name:
            return
        self._names[platform_id] = name
        try:
            await self._host.on_metadata(CHANNEL, platform_id, name, True)
        except Exception:
            log.exception("discord: recording the name of channel %s failed", platform_id)

    async def _attachments(self, message: discord.Message) -> tuple[list[IncomingAttachment], list[str]]:
        """Download the message's files; anything too large or unavailable becomes a note in the text instead."""
        attachments: list[IncomingAttachment] = []
        notes: list[str] = []
        for index, item in enumerate(message.attachments, start=1):
            name = safe_name(item.filename, f"file-{message.id}-{index}")
            if item.size > self._max_bytes:
                notes.append(too_large(name, item.size, self._max_bytes))
                continue
            try:
                data = await item.read()
            except (discord.HTTPException, *NETWORK_ERRORS) as err:
                log.warning("discord: downloading %s of message %s in %s failed: %s", name, message.id,
                            message.channel.id, err)
                notes.append(f"[{name} could not be downloaded from Discord]")
                continue
            if len(data) > self._max_bytes:  # the size Discord announced was not the size it served
                notes.append(not_kept(name, self._max_bytes))
                continue
            mime, kind = file_type(item.content_type, name, data)
            if item.is_voice_message():
                kind = "voice"
            attachments.append(IncomingAttachment(name=name, data=data, mime_type=mime, kind=kind))
        return attachments, notes


    # ------------------------------------------------------------------------------------------ buttons

    async def on_click(self, interaction: discord.Interaction) -> None:
        """A button click: answer the question once, show the choice on the card (its buttons go)."""
        data: dict[str, Any] = dict(interaction.data or {})
        try:
            await self._answer_card(interaction, data.get("custom_id"))
        except Exception:
            log.exception("discord button click %s (%r) failed", interaction.id, data.get("custom_id"))
            await self._tell(interaction, FAILED)

    async def _answer_card(self, interaction: discord.Interaction, data: object) -> None:
        parsed = parse_custom_id(data)
        message = interaction.message
        card = await cards.get(self._db, parsed[0]) if parsed is not None else None
        if parsed is None or card is None or message is None or card.channel_type != CHANNEL or (
            card.platform_id != str(interaction.channel_id)
        ) or (card.platform_message_id is not None and card.platform_message_id != str(message.id)) or not (
            0 <= parsed[1] < len(card.options)
        ):
            log.info("discord: click on an unknown or foreign card (%r) by %s", data, interaction.user.id)
            await self._tell(interaction, NOT_ACTIVE)
            return
        option = card.options[parsed[1]]
        if not await cards.mark_answered(self._db, card.id, option.value):
            await self._tell(interaction, ALREADY_ANSWERED)
            return
        await interaction.response.defer()  # within Discord's 3 seconds; the card is edited below
        mark = self._sender.edit_mark()
        await self._host.on_action(card.question_id, option.value, f"{CHANNEL}:{interaction.user.id}")
        if not self._sender.edited_since(mark, message.id):  # the host did not write an outcome on it
            chosen = option.selected_label or option.label
            head = f"**{card.title}**\n" if card.title else ""
            try:
                await self._sender.replace(int(card.platform_id), message.id, f"{head}✓ {chosen}")
            except Exception:
                log.warning("discord: showing the choice on card %s failed", card.id, exc_info=True)

    @staticmethod
    async def _tell(interaction: discord.Interaction, text: str) -> None:
        """A short answer only the clicker sees."""
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except (discord.HTTPException, *NETWORK_ERRORS) as err:
            log.info("discord: answering click %s failed: %s", interaction.id, err)
