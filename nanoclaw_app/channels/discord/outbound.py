"""Sending to Discord: text in parts, files, edits, reactions, typing, question cards and display cards.

Discord renders the agent's markdown itself, so text goes as written, split at 2000 characters (Discord's limit) on
paragraph, line or word boundaries; a code block cut in two is closed and reopened. Mentions in what the agent writes
never ping anyone (``@everyone`` stays text). Files ride with the first part (ten to a message) and the first
message's id is what ``deliver`` returns. A send cut short resumes after the parts that went out when delivery retries
it in this run, so retries do not repeat them. In a thread, everything goes into the thread.

Library errors become the app's: a rate limit → ``TransientError(retry_after=…)``; a network error → ``ChannelDown``
while the link is down (the message waits), else ``TransientError``; a refusal (no permission, DMs closed, unknown
channel) → ``UserError`` in plain words; a refused token → ``AuthError``.
"""

from __future__ import annotations

import io
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import discord

from nanoclaw_app.channels.discord.components import link_view, question_view
from nanoclaw_app.channels.discord.connection import NETWORK_ERRORS, Bot
from nanoclaw_app.channels.discord.link import CHANNEL, REFUSED_NOTICE, Link
from nanoclaw_app.channels.text import split_text
from nanoclaw_app.core import cards
from nanoclaw_app.core.messages import OutboundMessage, OutgoingFile
from nanoclaw_app.db.database import Database
from nanoclaw_app.errors import AuthError, ChannelDown, TransientError, UserError

log = logging.getLogger(__name__)

T = TypeVar("T")

TEXT_LIMIT = 2000
"""Discord's limit on a message's text."""
FENCE_LINE_LIMIT = 20
"""A reopened code block keeps at most this much of its opening line (```` ```python ````)."""
CHUNK_LIMIT = TEXT_LIMIT - FENCE_LINE_LIMIT - 10
"""What a part holds before a cut code block is closed and reopened around it."""
FILES_PER_MESSAGE = 10
FILE_MAX_BYTES = 10 * 1024 * 1024
"""What a bot may upload to any server (boosted servers allow more)."""
TITLE_LIMIT = 256
PROGRESS_KEEP = 200
FENCE = "```"


def balance_fences(chunks: list[str]) -> list[str]:
    """Close a code block a cut left open and reopen it in the next part, so each part renders on its own."""
    out: list[str] = []
    open_fence: str | None = None
    for chunk in chunks:
        text = f"{open_fence}\n{chunk}" if open_fence is not None else chunk
        fences = [line.strip() for line in text.splitlines() if line.strip().startswith(FENCE)]
        state: str | None = None
        for fence in fences:
            state = None if state is not None else fence[:FENCE_LINE_LIMIT]
        open_fence = state
        out.append(f"{text}\n{FENCE}" if state is not None else text)
    return out


def text_parts(text: str) -> list[str]:
    """The messages a text becomes, each within Discord's limit."""
    return balance_fences(split_text(text, CHUNK_LIMIT))


Step = tuple[str, Sequence[OutgoingFile]]
"""One message of a text delivery: its text and the files it carries."""


def plan(text: str, files: Sequence[OutgoingFile]) -> list[Step]:
    """The messages a text with files becomes, in order; files ride on the first part, ten at a time."""
    parts = text_parts(text)
    batches = [files[i:i + FILES_PER_MESSAGE] for i in range(0, len(files), FILES_PER_MESSAGE)] or [()]
    steps: list[Step] = [(parts[0], batches[0])]
    steps += [("", batch) for batch in batches[1:]]
    steps += [(part, ()) for part in parts[1:]]
    return steps


def target_id(platform_id: str, thread_id: str | None) -> int:
    """The Discord channel a message goes to: the thread when there is one."""
    try:
        return int(thread_id or platform_id)
    except ValueError:
        raise UserError(f"{thread_id or platform_id!r} is not a Discord channel id") from None


def message_ref(message_id: str | None, what: str) -> int:
    """A Discord message id from our stored string form."""
    try:
        return int(message_id or "")
    except ValueError:
        raise UserError(f"a {what} needs the Discord message it changes (got {message_id!r})") from None


class Sender:
    """Turns ``OutboundMessage``s into Discord REST calls through the running client."""

    def __init__(self, client: Callable[[], Bot], db: Database, link: Link) -> None:
        self._client = client
        self._db = db
        self._link = link
        self._progress: OrderedDict[str, list[str]] = OrderedDict()
        self._edits: list[tuple[int, int]] = []
        self._edit_seq = 0

    def channel(self, channel_id: int) -> discord.PartialMessageable:
        """A channel to send to by id (no cache needed: DMs, threads and channels alike)."""
        return self._client().get_partial_messageable(channel_id)

    # ------------------------------------------------------------------------------------------ dispatch

    async def deliver(self, platform_id: str, thread_id: str | None, message: OutboundMessage) -> str | None:
        """Send one outbound message; returns the id of the (first) Discord message sent."""
        if not self._link.up:
            raise self._link.down()
        channel = self.channel(target_id(platform_id, thread_id))
        if message.kind == "edit":
            return await self._edit(channel, message_ref(message.target_message_id, "edit"), message.text)
        if message.kind == "reaction":
            await self._react(channel, message_ref(message.target_message_id, "reaction"), message.emoji or "")
            return None
        if message.kind == "question":
            return await self._question(channel, message)
        if message.kind == "card":
            return await self._card(channel, message)
        return await self._text(channel, message)

    async def typing(self, platform_id: str, thread_id: str | None) -> None:
        """Show "typing…" for a few seconds; a failure only costs the indicator."""
        if not self._link.up:
            return
        try:
            await self.channel(target_id(platform_id, thread_id)).typing()
        except (discord.DiscordException, *NETWORK_ERRORS, UserError) as err:
            log.debug("discord: typing indicator in %s failed: %s", platform_id, err)

    # ------------------------------------------------------------------------------------------ kinds

    async def _text(self, channel: discord.PartialMessageable, message: OutboundMessage) -> str:
        steps = plan(message.text, message.files)
        if len(steps) == 1 and not steps[0][0].strip() and not steps[0][1]:
            raise UserError("there is nothing to send: the message is empty")
        for file in message.files:
            if len(file.data) > FILE_MAX_BYTES:
                raise UserError(f"{file.name} is {len(file.data) / (1024 * 1024):.1f} MB; Discord bots can send "
                                "files of up to 10 MB")
        sent = self._progress.setdefault(message.delivery_id, [])
        for index, (text, files) in enumerate(steps):
            if index < len(sent):
                continue  # went out on an earlier attempt
            uploads = [discord.File(io.BytesIO(f.data), filename=f.name) for f in files]
            result = await self._api(lambda text=text, uploads=uploads: channel.send(  # type: ignore[misc]
                text or None, files=uploads or discord.utils.MISSING))
            sent.append(str(result.id))
            self._remember_progress(message.delivery_id)
        self._progress.pop(message.delivery_id, None)
        return sent[0]

    async def _question(self, channel: discord.PartialMessageable, message: OutboundMessage) -> str:
        if not message.options or not message.question_id:
            raise UserError("a question card needs a question id and options")
        title = message.title or ""
        card = await cards.record(self._db, CHANNEL, str(channel.id), message.question_id, title, message.options)
        head = f"**{' '.join(title.split())[:TITLE_LIMIT]}**" if title.strip() else ""
        body = message.text.strip() if message.text.strip() != title.strip() else ""
        parts = text_parts(body) if body else [""]
        if len(head) + len(parts[-1]) + 1 > TEXT_LIMIT:
            parts.append("")
        for part in parts[:-1]:
            await self._api(lambda part=part: channel.send(part))  # type: ignore[misc]
        last = "\n".join(p for p in (head, parts[-1]) if p) or "…"
        sent = await self._api(lambda: channel.send(last, view=question_view(card.id, message.options)))
        await cards.set_message(self._db, card.id, str(sent.id))
        return str(sent.id)

    async def _card(self, channel: discord.PartialMessageable, message: OutboundMessage) -> str:
        title = (message.title or "").strip()
        embed = discord.Embed(title=title[:TITLE_LIMIT] or None, description=message.text[:4096] or None)
        view = link_view(message.links)
        if view is None and message.links:
            lines = [f"{link.get('label') or link.get('url', '')}: {link.get('url', '')}" for link in message.links]
            embed.add_field(name="Links", value="\n".join(lines)[:1024], inline=False)
        sent = await self._api(lambda: channel.send(embed=embed, view=view or discord.utils.MISSING))
        return str(sent.id)

    async def _edit(self, channel: discord.PartialMessageable, message_id: int, text: str) -> str:
        parts = text_parts(text)
        chunk = parts[0] if len(parts) == 1 else parts[0][: TEXT_LIMIT - 1] + "…"  # an edit cannot add messages
        await self.replace(channel.id, message_id, chunk)
        return str(message_id)

    async def _react(self, channel: discord.PartialMessageable, message_id: int, emoji: str) -> None:
        if not emoji.strip():
            log.warning("discord: an empty reaction was asked for; no reaction sent")
            return
        try:
            await self._api(lambda: channel.get_partial_message(message_id).add_reaction(emoji.strip()))
        except UserError as err:
            log.warning("discord refused the reaction %r on message %s in %s: %s", emoji, message_id, channel.id,
                        err)

    # ------------------------------------------------------------------------------------------ edits

    def edit_mark(self) -> int:
        """A point in time for :meth:`edited_since`."""
        return self._edit_seq

    def edited_since(self, mark: int, message_id: int) -> bool:
        """Whether ``message_id`` was edited through :meth:`replace` after ``mark`` (the host wrote an outcome)."""
        return any(seq > mark and m == message_id for seq, m in self._edits)

    async def replace(self, channel_id: int, message_id: int, text: str) -> None:
        """Replace a message's text and drop its buttons (an answered card must not be clicked again)."""
        self._edit_seq += 1
        self._edits = [*self._edits[-(PROGRESS_KEEP - 1):], (self._edit_seq, message_id)]
        partial = self.channel(channel_id).get_partial_message(message_id)
        await self._api(lambda: partial.edit(content=text, view=None))

    # ------------------------------------------------------------------------------------------ errors

    async def _api(self, call: Callable[[], Awaitable[T]]) -> T:
        """One REST call with its errors translated."""
        try:
            return await call()
        except discord.RateLimited as err:
            raise TransientError("Discord asks to slow down", retry_after=err.retry_after) from err
        except discord.Forbidden as err:
            raise UserError(forbidden(err)) from err
        except discord.NotFound as err:
            raise UserError(f"Discord does not know that channel or message any more ({err.text or err.code})"
                            ) from err
        except discord.DiscordServerError as err:
            raise TransientError(f"Discord had a problem (HTTP {err.status}); trying again") from err
        except discord.HTTPException as err:
            if err.status == 401:
                self._link.refused()
                raise AuthError(REFUSED_NOTICE) from err
            if err.status == 429:
                raise TransientError("Discord asks to slow down") from err
            raise UserError(f"Discord refused the message: {err.text or err.status}") from err
        except NETWORK_ERRORS as err:
            if not self._link.up:
                raise ChannelDown(CHANNEL, "Discord cannot be reached") from err
            raise TransientError(f"Discord could not be reached ({type(err).__name__})") from err

    def _remember_progress(self, delivery_id: str) -> None:
        self._progress.move_to_end(delivery_id)
        while len(self._progress) > PROGRESS_KEEP:
            self._progress.popitem(last=False)


def forbidden(err: discord.Forbidden) -> str:
    """Why Discord does not let the bot write there, and what fixes it."""
    if err.code == 50007:
        return ("the person does not accept direct messages from the bot (in Discord: the server's Privacy "
                "Settings → allow direct messages from server members)")
    if err.code in (50001, 50013):
        return ("the bot lacks permission in that channel: add it again with the invite link from the Channels "
                "page, or allow it in the channel's settings")
    return f"Discord does not let the bot do that: {err.text or err.code}"
