"""The rows the loop writes: a turn's addressed answers, a command's output, error notices, and the re-wrap nudge.

``route_blocks`` blocks (it may read ``inbound.db``); the loop runs it in a thread.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from agent_runner.formatter import is_system_note
from agent_runner.output import ParsedOutput
from agent_runner.protocol import Destination, InboundRow, MessageKind, TextOut
from agent_runner.session_db import NewOutbound, Routing, SessionDB
from agent_runner.tools.context import address_of, find_destination, name_list

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500


def _text_to(text: str, channel_type: str | None, platform_id: str | None, thread_id: str | None,
             in_reply_to: str | None) -> NewOutbound:
    return NewOutbound(kind=MessageKind.CHAT, content=TextOut(text=text).to_json(), channel_type=channel_type,
                       platform_id=platform_id, thread_id=thread_id, in_reply_to=in_reply_to)


def answer_to(row: InboundRow, text: str) -> NewOutbound:
    """A message back to where ``row`` came from, in its thread."""
    return _text_to(text, row.channel_type, row.platform_id, row.thread_id, row.id)


def route_blocks(
    db: SessionDB, parsed: ParsedOutput, destinations: Sequence[Destination], routing: Routing,
    rows: Sequence[InboundRow],
) -> tuple[list[NewOutbound], list[str]]:
    """One outbound row per block to a known destination, and the unknown names (dropped, logged).

    Each row answers the latest row from its destination (this turn's first, else any in ``inbound.db``) and takes
    its thread; the session's own chat without such a row gets the session's thread, any other chat none.
    """
    messages: list[NewOutbound] = []
    unknown: list[str] = []
    for name, body in parsed.blocks:
        dest = find_destination(destinations, name)
        if dest is None:
            log.warning("dropped a message to unknown destination %r (known: %s)", name, name_list(destinations))
            unknown.append(name)
            continue
        channel_type, platform_id = address_of(dest)
        origin = next((r for r in reversed(rows) if (r.channel_type, r.platform_id) == (channel_type, platform_id)),
                      None)
        if origin is None and channel_type and platform_id:
            origin = db.latest_from(channel_type, platform_id)
        if origin is not None:
            messages.append(_text_to(body, channel_type, platform_id, origin.thread_id, origin.id))
        else:
            own_chat = (channel_type, platform_id) == (routing[0], routing[1])
            messages.append(_text_to(body, channel_type, platform_id, routing[2] if own_chat else None, None))
    return messages, unknown


def failure_notice(rows: Sequence[InboundRow], text: str, routing: Routing) -> NewOutbound | None:
    """"Error: …" for whoever the failed rows came from; never back to the agent itself (host notes).

    Falls back to the session's own chat; None (logged by the caller) when there is nobody to tell.
    """
    detail = text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"
    people = [r for r in rows if not is_system_note(r)]
    target = next((r for r in reversed(people) if r.trigger == 1), people[-1] if people else None)
    if target is not None and target.platform_id:
        return answer_to(target, f"Error: {detail}")
    if routing[1]:
        return _text_to(f"Error: {detail}", routing[0], routing[1], routing[2], None)
    return None


def nudge_text(destinations: Sequence[Destination], unknown: Sequence[str]) -> str:
    """Asks the agent to re-send what it meant to deliver, naming the destinations it can use."""
    names = name_list(destinations)
    if unknown:
        wrong = ", ".join(f'"{n}"' for n in unknown)
        return (f"Nothing was delivered: {wrong} is not one of your destinations. Send your reply again, wrapped as "
                f'<message to="NAME">…</message> where NAME is one of: {names}.')
    return ("Nothing you wrote was delivered, because it was not inside a message block. If it was meant for someone, "
            f'send it again wrapped as <message to="NAME">…</message>, where NAME is one of: {names}. '
            "If it was only a note to yourself, reply with nothing.")


__all__ = ["answer_to", "failure_notice", "nudge_text", "route_blocks"]
