"""What every activity view shares: agent and chat names, times on the user's clock, and the row limit.

Names are resolved here so the page and the CLI print the same labels; times are stored in UTC and shown in the user's
timezone (``settings.timezone``), the same clock the daily spend cap and cron schedules use.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from agent_runner.protocol import AGENT_CHANNEL
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import messaging as messaging_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import MessagingGroup
from nanoclaw_app.errors import UserError
from nanoclaw_app.timeutil import parse_utc


def local_time(stored: str | None, tz: ZoneInfo) -> str | None:
    """A stored UTC time as ``YYYY-MM-DD HH:MM`` on the user's clock (None stays None; unreadable text is kept)."""
    if not stored:
        return None
    try:
        return parse_utc(stored).astimezone(tz).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stored


@dataclass(frozen=True, slots=True)
class Directory:
    """Agent and chat names, loaded once per request so every row gets a label without a query of its own."""

    agents: dict[str, str]
    chats: dict[str, MessagingGroup]
    addresses: dict[tuple[str, str], MessagingGroup]

    def agent(self, agent_group_id: str | None) -> str:
        """The agent's name; its id if it was deleted since."""
        if not agent_group_id:
            return ""
        return self.agents.get(agent_group_id, agent_group_id)

    def chat(self, messaging_group_id: str | None) -> str | None:
        """The chat's name (or its platform address); None for a session that spans every chat."""
        if not messaging_group_id:
            return None
        chat = self.chats.get(messaging_group_id)
        return messaging_group_id if chat is None else _chat_label(chat)

    def address(self, channel_type: str | None, platform_id: str | None) -> str | None:
        """A platform address as the chat's name when the chat is known."""
        if not channel_type or not platform_id:
            return None
        if channel_type == AGENT_CHANNEL:
            return f"→ {self.agent(platform_id)}"
        chat = self.addresses.get((channel_type, platform_id))
        return f"{channel_type} {platform_id}" if chat is None else _chat_label(chat)


def _chat_label(chat: MessagingGroup) -> str:
    return chat.name or f"{chat.channel_type} {chat.platform_id}"


async def load_directory(db: Database) -> Directory:
    """Every agent and chat name (a home install has a handful of each)."""
    chats = await messaging_db.list_all(db)
    return Directory(
        agents={a.id: a.name for a in await agents_db.list_all(db)},
        chats={c.id: c for c in chats},
        addresses={(c.channel_type, c.platform_id): c for c in chats},
    )


def check_limit(limit: int) -> int:
    """A list's row limit, refused outside 1..1000 so a typo cannot ask for the whole table."""
    if not 1 <= limit <= 1000:
        raise UserError(f"show between 1 and 1000 rows, not {limit}")
    return limit
