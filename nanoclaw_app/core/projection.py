"""Projection of the central ACL into a session: the names an agent may address and its default reply address.

The central ``agent_destinations`` table is the ACL the host enforces at delivery; the session's ``destinations`` and
``session_routing`` tables are what the container reads. The container cannot reach the central DB, so the host
rewrites both wholesale on every wake and whenever an agent's destinations change.
"""

from __future__ import annotations

import logging

from agent_runner.protocol import Destination, DestinationType
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.db import agents, destinations, messaging
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import Session

log = logging.getLogger(__name__)

Routing = tuple[str | None, str | None, str | None]


async def destinations_for(ctx: CoreContext, agent_group_id: str) -> list[Destination]:
    """Resolve an agent's central destinations into what its sessions see (dangling targets are skipped)."""
    result: list[Destination] = []
    for dest in await destinations.list_for(ctx.db, agent_group_id):
        if dest.target_type == DestinationType.CHANNEL:
            chat = await messaging.get(ctx.db, dest.target_id)
            if chat is None:
                log.warning("destination %r of agent %s points at missing chat %s", dest.local_name,
                            agent_group_id, dest.target_id)
                continue
            result.append(Destination(
                name=dest.local_name,
                display_name=chat.name or dest.local_name,
                type=DestinationType.CHANNEL,
                channel_type=chat.channel_type,
                platform_id=chat.platform_id,
            ))
        elif dest.target_type == DestinationType.AGENT:
            agent = await agents.get(ctx.db, dest.target_id)
            if agent is None:
                log.warning("destination %r of agent %s points at missing agent %s", dest.local_name,
                            agent_group_id, dest.target_id)
                continue
            result.append(Destination(
                name=dest.local_name,
                display_name=agent.name,
                type=DestinationType.AGENT,
                agent_group_id=agent.id,
            ))
    return result


async def routing_for(ctx: CoreContext, session: Session) -> Routing:
    """The session's own chat and thread; all None for an agent-shared session, which has no chat of its own."""
    if session.messaging_group_id is None:
        return None, None, None
    chat = await messaging.get(ctx.db, session.messaging_group_id)
    if chat is None:
        return None, None, None
    return chat.channel_type, chat.platform_id, session.thread_id


async def project(ctx: CoreContext, session: Session) -> None:
    """Rewrite the session's ``destinations`` and ``session_routing`` in its ``inbound.db``."""
    dests = await destinations_for(ctx, session.agent_group_id)
    routing = await routing_for(ctx, session)
    folder = ctx.store.dir(session.agent_group_id, session.id)
    await ctx.store.write_projection(folder, dests, routing)


async def reproject_agent(ctx: CoreContext, agent_group_id: str) -> None:
    """Re-project every active session of an agent (call after its destinations change)."""
    for session in await sessions_db.list_for_agent(ctx.db, agent_group_id):
        try:
            await project(ctx, session)
        except FileNotFoundError:
            # A session row whose folder was never created (or was removed); the next wake projects it anyway.
            log.warning("cannot re-project session %s of agent %s: its folder is missing", session.id,
                        agent_group_id)
