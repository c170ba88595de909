"""Builders shared by the routing tests: chats, wirings, members, inbound messages, recorded hooks."""


from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.db import agents, drops, messaging, users
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.messaging import WiringSpec
from nanoclaw_app.db.rows import MessagingGroup, Session, Wiring


@dataclass
class Hooks:
    """Records what the router asks of the approval flows."""

    consume: bool = False
    intercepted: list[str] = field(default_factory=list)
    sender_requests: list[tuple[str, str, str]] = field(default_factory=list)
    channel_requests: list[str] = field(default_factory=list)

    async def intercept(self, msg: InboundMessage) -> bool:
        self.intercepted.append(msg.message_id)
        return self.consume

    async def request_sender_approval(
        self, msg: InboundMessage, chat: MessagingGroup, wiring: Wiring, user_id: str
    ) -> None:
        self.sender_requests.append((chat.id, wiring.agent_group_id, user_id))

    async def request_channel_registration(self, msg: InboundMessage, chat: MessagingGroup) -> None:
        self.channel_requests.append(chat.id)


_counter = iter(range(1, 1_000_000))


def inbound(
    text: str = "hello",
    *,
    chat: str = "chat-1",
    sender: str = "alice",
    group: bool = False,
    mention: bool = False,
    thread: str | None = None,
    message_id: str | None = None,
    **extra: Any,
) -> InboundMessage:
    return InboundMessage(
        channel_type="test", platform_id=chat, message_id=message_id or f"m{next(_counter)}", sender_id=sender,
        text=text, sender_name=sender.title(), thread_id=thread, is_group=group, is_mention=mention, **extra,
    )


async def agent(ctx: CoreContext, name: str = "Alpha") -> str:
    return (await agents.create(ctx.db, name)).id


async def chat_with(
    ctx: CoreContext, agent_ids: list[str], *, platform_id: str = "chat-1", group: bool = False,
    policy: str = "strict", **spec: Any,
) -> MessagingGroup:
    mg = await messaging.create(ctx.db, "test", platform_id, name=platform_id, is_group=group,
                                unknown_sender_policy=policy)
    for agent_id in agent_ids:
        await messaging.wire(ctx.db, mg.id, agent_id, WiringSpec(**spec))
    return mg


async def member(ctx: CoreContext, handle: str, *agent_ids: str) -> str:
    uid = f"test:{handle}"
    await users.upsert(ctx.db, uid, "test", handle.title())
    for agent_id in agent_ids:
        await users.add_member(ctx.db, uid, agent_id)
    return uid


async def rows_of(ctx: CoreContext, session_id: str) -> list[sqlite3.Row]:
    session = await sessions_db.get(ctx.db, session_id)
    assert session is not None
    folder = ctx.store.dir(session.agent_group_id, session.id)
    return await ctx.store.read(folder, lambda c: c.execute("SELECT * FROM messages_in ORDER BY seq").fetchall(),
                                with_outbound=False)


async def drop_reasons(ctx: CoreContext) -> dict[tuple[str, str | None], int]:
    return {(d.reason, d.agent_group_id): d.message_count for d in await drops.list_recent(ctx.db)}


async def sessions_of(ctx: CoreContext, agent_id: str) -> list[Session]:
    return await sessions_db.list_for_agent(ctx.db, agent_id)
