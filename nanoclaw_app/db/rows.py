"""Typed rows of the central tables. Query modules return these, never raw ``sqlite3.Row`` objects."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, fields
from typing import Any, TypeVar

T = TypeVar("T")


def from_row(cls: type[T], row: sqlite3.Row) -> T:
    """Build a row dataclass from a ``sqlite3.Row``, taking only the columns the class declares."""
    keys = row.keys()
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    return cls(**{name: row[name] for name in names if name in keys})


def maybe(cls: type[T], row: sqlite3.Row | None) -> T | None:
    """``from_row`` that passes None through."""
    return None if row is None else from_row(cls, row)


@dataclass(frozen=True, slots=True)
class AgentGroup:
    """An agent: its workspace folder, memory and personality."""

    id: str
    name: str
    folder: str
    created_at: str
    egress_mode: str = "open"
    """``open`` (any site, every connection logged) or ``sites`` (only ``egress_sites_json``)."""
    egress_sites_json: str = "[]"
    """A JSON list of normalised sites (``policy.check_site``); each covers its subdomains."""


@dataclass(frozen=True, slots=True)
class MessagingGroup:
    """One chat on one platform."""

    id: str
    channel_type: str
    platform_id: str
    name: str | None
    is_group: int
    unknown_sender_policy: str
    denied_at: str | None
    created_at: str


@dataclass(frozen=True, slots=True)
class Wiring:
    """A ``messaging_group_agents`` row: which agent answers in which chat, and how."""

    id: str
    messaging_group_id: str
    agent_group_id: str
    engage_mode: str
    engage_pattern: str | None
    sender_scope: str
    ignored_message_policy: str
    session_mode: str
    priority: int
    created_at: str


@dataclass(frozen=True, slots=True)
class User:
    """A platform identity, ``<channel>:<handle>``."""

    id: str
    kind: str
    display_name: str | None
    created_at: str


@dataclass(frozen=True, slots=True)
class Role:
    """An owner (global) or admin (global or scoped to one agent) grant."""

    user_id: str
    role: str
    agent_group_id: str | None
    granted_by: str | None
    granted_at: str


@dataclass(frozen=True, slots=True)
class Membership:
    """An ``agent_group_members`` row: a person who may talk to one agent."""

    user_id: str
    agent_group_id: str
    added_by: str | None
    added_at: str


@dataclass(frozen=True, slots=True)
class Session:
    """Lifecycle metadata of one session (one folder, one container while running)."""

    id: str
    agent_group_id: str
    messaging_group_id: str | None
    thread_id: str | None
    session_mode: str
    agent_provider: str | None
    status: str
    container_status: str
    last_active: str | None
    created_at: str


@dataclass(frozen=True, slots=True)
class AgentDestination:
    """A name an agent may send to: a chat or another agent."""

    agent_group_id: str
    local_name: str
    target_type: str
    target_id: str
    created_at: str


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    """Per-agent container settings (JSON columns left as text; the runtime decodes them)."""

    agent_group_id: str
    provider: str
    model: str | None
    effort: str | None
    image_tag: str | None
    assistant_name: str | None
    max_messages_per_prompt: int | None
    skills: str
    mcp_servers: str
    packages_apt: str
    packages_pip: str
    packages_npm: str
    additional_mounts: str
    updated_at: str


def as_dict(obj: Any) -> dict[str, Any]:
    """A row as a plain dict (for JSON)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}
