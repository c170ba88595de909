"""What our tools share: the runner's config, the session DBs, the batch being answered, and address resolution.

The tools run in the runner's own process (an in-process MCP server for Claude, our own tool loop otherwise), so they
see the batch the loop is answering and stamp ``in_reply_to`` from it; the original's separate MCP process lost it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from agent_runner.config import RunnerConfig
from agent_runner.formatter import is_system_note
from agent_runner.heartbeat import Heartbeat
from agent_runner.inbound_watch import ChangeSignal
from agent_runner.protocol import AGENT_CHANNEL, Destination, DestinationType, InboundRow
from agent_runner.session_db import NewOutbound, SessionDB
from agent_runner.tools.base import ToolError

T = TypeVar("T")


@dataclass
class CurrentBatch:
    """The inbound rows of the turn being answered; the loop replaces ``rows`` as turns advance."""

    rows: list[InboundRow] = field(default_factory=list)

    def origins(self) -> list[InboundRow]:
        """Rows that came from a person or another agent (host notes are not someone to answer)."""
        return [r for r in self.rows if not is_system_note(r)]


@dataclass
class ToolContext:
    """Everything a tool call needs; one per runner, shared by every query."""

    config: RunnerConfig
    db: SessionDB
    batch: CurrentBatch = field(default_factory=CurrentBatch)
    changes: ChangeSignal | None = None
    """Inbound-change notifications (blocking tools wait on them); None means poll only."""
    heartbeat: Heartbeat | None = None
    """Beaten while a tool blocks, so the host does not take a long wait for a hang."""
    sent: int = 0
    """Messages written by tools so far; the loop compares it across a turn before nudging."""

    async def io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking session-DB call off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def write(self, message: NewOutbound) -> int:
        """Write one outbound row; returns its seq (the id the agent can edit or react to later)."""
        (seq,) = await self.io(self.db.write_messages, [message])
        self.sent += 1
        return seq


@dataclass(frozen=True, slots=True)
class Address:
    """Where a tool's message goes, and which inbound row it answers."""

    name: str | None
    channel_type: str | None
    platform_id: str | None
    thread_id: str | None
    in_reply_to: str | None

    @property
    def is_agent(self) -> bool:
        """True when the recipient is another agent."""
        return self.channel_type == AGENT_CHANNEL


def address_of(dest: Destination) -> tuple[str | None, str | None]:
    """``(channel_type, platform_id)`` of a destination; agents are reached on the ``agent`` channel."""
    if dest.type == DestinationType.AGENT:
        return AGENT_CHANNEL, dest.agent_group_id
    return dest.channel_type, dest.platform_id


def find_destination(destinations: Sequence[Destination], name: str) -> Destination | None:
    """Exact name first, then a unique case-insensitive match (models capitalise names)."""
    wanted = name.strip()
    for dest in destinations:
        if dest.name == wanted:
            return dest
    folded = [d for d in destinations if d.name.casefold() == wanted.casefold()]
    return folded[0] if len(folded) == 1 else None


def name_list(destinations: Sequence[Destination]) -> str:
    """``"a", "b"`` for error messages, or a sentence when there are none."""
    return ", ".join(f'"{d.name}"' for d in destinations) or "(none: you have no destinations)"


def resolve_address(ctx: ToolContext, to: str | None) -> Address:
    """Resolve ``to`` (or the default) into an address; blocking (reads the session DB).

    Without ``to``: the session's own chat, else the chat being answered, else the only destination; several
    destinations and no way to choose is an error naming them. The thread is the one of the row being answered from
    that chat, or the session's own thread; another chat gets no thread.
    """
    destinations = ctx.db.destinations()
    routing = ctx.db.routing()
    origins = ctx.batch.origins()
    name: str | None = None
    if to is not None and to.strip():
        dest = find_destination(destinations, to)
        if dest is None:
            raise ToolError(f"unknown destination {to!r}; valid names: {name_list(destinations)}")
        name = dest.name
        channel_type, platform_id = address_of(dest)
    elif routing[1]:
        channel_type, platform_id = routing[0], routing[1]
    elif origins:
        channel_type, platform_id = origins[-1].channel_type, origins[-1].platform_id
    elif len(destinations) == 1:
        name = destinations[0].name
        channel_type, platform_id = address_of(destinations[0])
    elif not destinations:
        raise ToolError("there is nobody to send to: this session has no chat and no destinations")
    else:
        raise ToolError(f"say who this is for with `to`: one of {name_list(destinations)}")
    if not platform_id:
        raise ToolError(f"destination {name or to!r} has no address yet")
    origin = next(
        (r for r in reversed(origins) if r.channel_type == channel_type and r.platform_id == platform_id), None
    )
    thread_id: str | None
    in_reply_to: str | None
    if origin is not None:
        thread_id, in_reply_to = origin.thread_id, origin.id
    else:
        own_chat = (channel_type, platform_id) == (routing[0], routing[1])
        thread_id = routing[2] if own_chat else None
        # Agent delivery uses in_reply_to to find the return path; only a row from that agent may steer it.
        in_reply_to = None if channel_type == AGENT_CHANNEL or not origins else origins[-1].id
    return Address(name=name, channel_type=channel_type, platform_id=platform_id, thread_id=thread_id,
                   in_reply_to=in_reply_to)


# --------------------------------------------------------------------------------------------- arguments


def text_arg(args: dict[str, Any], key: str) -> str:
    """A required, non-empty string argument; a missing one or a wrong type is a ``ToolError`` the model can fix."""
    value = opt_text_arg(args, key)
    if value is None:
        raise ToolError(f"`{key}` is required and must not be empty")
    return value


def opt_text_arg(args: dict[str, Any], key: str, *, allow_empty: bool = False) -> str | None:
    """An optional string argument; missing (or empty, unless ``allow_empty``) gives None."""
    value = args.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ToolError(f"`{key}` must be a string")
    if not allow_empty and not value.strip():
        return None
    return value


def int_arg(args: dict[str, Any], key: str) -> int:
    """An integer argument (a numeric string is accepted; models quote numbers)."""
    value = args.get(key)
    if isinstance(value, bool):
        raise ToolError(f"`{key}` must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise ToolError(f"`{key}` must be an integer")


def number_arg(args: dict[str, Any], key: str, default: float) -> float:
    """An optional positive number."""
    value = args.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ToolError(f"`{key}` must be a number")
    try:
        number = float(value)
    except ValueError as err:
        raise ToolError(f"`{key}` must be a number") from err
    if number <= 0:
        raise ToolError(f"`{key}` must be positive")
    return number


def str_list_arg(args: dict[str, Any], key: str, *, clean: bool = True) -> list[str]:
    """An optional list of strings (missing means empty); ``clean`` strips them and drops empty ones."""
    value = args.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ToolError(f"`{key}` must be a list of strings")
    return [v.strip() for v in value if v.strip()] if clean else list(value)


def schema(properties: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    """A JSON schema for an object of ``properties``."""
    return {"type": "object", "properties": properties, "required": list(required)}


def string(description: str) -> dict[str, Any]:
    """A string property."""
    return {"type": "string", "description": description}


__all__ = [
    "Address",
    "CurrentBatch",
    "ToolContext",
    "address_of",
    "find_destination",
    "int_arg",
    "name_list",
    "number_arg",
    "opt_text_arg",
    "resolve_address",
    "schema",
    "str_list_arg",
    "string",
    "text_arg",
]
