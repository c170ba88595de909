"""An agent's extra mounts and the allowlist of folders they may come from.

Mounts are checked against the user's allowlist when they are saved, not only when a container starts, so a refusal is
seen by the person who asked for the mount. The allowlist itself refuses roots inside NanoClaw's own data or settings.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.errors import ConfigError, NotFound, UserError
from nanoclaw_app.runtime.mounts import (
    DEFAULT_BLOCKED_PATTERNS,
    AllowedRoot,
    Allowlist,
    MountRequest,
    load_allowlist,
    resolve_mounts,
    save_allowlist,
)
from nanoclaw_app.services.agents import lookup
from nanoclaw_app.services.context import AppServices

log = logging.getLogger(__name__)

MAX_MOUNTS = 32


@dataclass
class MountIn:
    """A requested extra folder: ``host_path`` on this computer, seen at ``/workspace/extra/<container_path>``."""

    host_path: str
    container_path: str | None = None
    read_write: bool = False


@dataclass
class MountStatus:
    """A saved mount and what the allowlist says about it now (the allowlist may have changed since)."""

    host_path: str
    container_path: str | None
    read_write: bool
    ok: bool
    target: str | None
    read_only: bool
    note: str
    reason: str


@dataclass
class RootView:
    """An allowed root of the mount allowlist."""

    path: str
    allow_read_write: bool
    description: str
    exists: bool


@dataclass
class AllowlistView:
    """The mount allowlist: which folders agents may be given, and the names that are always refused."""

    path: str
    roots: list[RootView]
    blocked_patterns: list[str]
    default_blocked: list[str]


@dataclass
class MountsView:
    """An agent's extra mounts with their status, and the allowlist they are checked against."""

    agent_id: str
    mounts: list[MountStatus]
    allowlist: AllowlistView
    error: str = ""
    """Set when the saved mounts or the allowlist cannot be read; saving a new list fixes the former."""


# ---------------------------------------------------------------------------------------------- an agent's mounts


async def get_mounts(services: AppServices, agent_id: str) -> MountsView:
    """The agent's extra mounts, each checked against the allowlist as it is now."""
    agent = await lookup.agent(services, agent_id)
    config = await lookup.config(services, agent.id)
    try:
        allowlist_view = await get_allowlist(services)
    except ConfigError as err:
        return MountsView(agent.id, [], _empty_allowlist(services), error=str(err))
    try:
        requests = _requests_of(config.additional_mounts)
    except ConfigError as err:
        return MountsView(agent.id, [], allowlist_view, error=str(err))
    return MountsView(agent.id, _statuses(services, requests), allowlist_view)


async def set_mounts(services: AppServices, agent_id: str, mounts: Sequence[MountIn]) -> MountsView:
    """Replace the agent's extra mounts; refused (nothing saved) when any mount fails the allowlist, with why."""
    agent = await lookup.agent(services, agent_id)
    if len(mounts) > MAX_MOUNTS:
        raise UserError(f"at most {MAX_MOUNTS} extra mounts per agent")
    requests = []
    for mount in mounts:
        item: dict[str, Any] = {"host_path": mount.host_path.strip(), "read_write": bool(mount.read_write)}
        if mount.container_path is not None and mount.container_path.strip():
            item["container_path"] = mount.container_path.strip()
        try:
            requests.append(MountRequest.from_json(item))
        except ConfigError as err:
            raise UserError(str(err)) from err
    allowlist = load_allowlist(services.settings.paths.mount_allowlist)
    _, refused = resolve_mounts(requests, allowlist, protected=_protected(services))
    if refused:
        raise UserError("not saved: " + "; ".join(f"{r.request.host_path}: {r.reason}" for r in refused))
    stored = [
        {"host_path": r.host_path, **({"container_path": r.container_path} if r.container_path else {}),
         "read_write": r.read_write}
        for r in requests
    ]
    await agents_db.update_config(services.ctx.db, agent.id, additional_mounts=json.dumps(stored))
    log.info("extra mounts of agent %s set by the owner: %s", agent.id, [r.host_path for r in requests])
    services.ctx.events.publish("agent.config_changed", agent_group_id=agent.id, change="mounts")
    return await get_mounts(services, agent.id)


def _requests_of(raw: str) -> list[MountRequest]:
    try:
        items = json.loads(raw or "[]")
    except ValueError as err:
        raise ConfigError(f"the saved mounts are not valid JSON ({err}); save the list again") from err
    if not isinstance(items, list):
        raise ConfigError("the saved mounts are not a list; save the list again")
    return [MountRequest.from_json(item) for item in items]


def _statuses(services: AppServices, requests: list[MountRequest]) -> list[MountStatus]:
    try:
        allowlist = load_allowlist(services.settings.paths.mount_allowlist)
    except ConfigError:
        allowlist = Allowlist()
    accepted, refused = resolve_mounts(requests, allowlist, protected=_protected(services))
    reasons = {id(r.request): r.reason for r in refused}
    made = iter(accepted)
    out = []
    for request in requests:
        reason = reasons.get(id(request))
        resolved = None if reason is not None else next(made)
        out.append(MountStatus(
            host_path=request.host_path, container_path=request.container_path, read_write=request.read_write,
            ok=resolved is not None, target=resolved.target if resolved else None,
            read_only=resolved.read_only if resolved else True, note=resolved.note if resolved else "",
            reason=reason or "",
        ))
    return out


# ---------------------------------------------------------------------------------------------- the allowlist


async def get_allowlist(services: AppServices) -> AllowlistView:
    """The allowlist file as it is now (``ConfigError`` with the fix when it is malformed)."""
    path = services.settings.paths.mount_allowlist
    allowlist = load_allowlist(path)
    return AllowlistView(
        path=str(path),
        roots=[RootView(str(r.path), r.allow_read_write, r.description, r.path.is_dir()) for r in allowlist.roots],
        blocked_patterns=list(allowlist.blocked_patterns),
        default_blocked=list(DEFAULT_BLOCKED_PATTERNS),
    )


async def add_allowed_root(
    services: AppServices, path: str, *, read_write: bool = False, description: str = ""
) -> AllowlistView:
    """Allow mounts below a folder (replacing an entry for the same folder, e.g. to change read-write)."""
    file = services.settings.paths.mount_allowlist
    allowlist = load_allowlist(file)
    root = _check_root(services, path)
    resolved = root.resolve()
    kept = [r for r in allowlist.roots if not _same_folder(r.path, resolved)]
    entry = AllowedRoot(path=root, allow_read_write=bool(read_write), description=description.strip()[:200])
    save_allowlist(file, Allowlist(roots=(*kept, entry), blocked_patterns=allowlist.blocked_patterns))
    log.info("mount allowlist: %s allowed (%s)", root, "read-write" if read_write else "read-only")
    services.ctx.events.publish("mounts.allowlist_changed", added=str(root), read_write=bool(read_write))
    return await get_allowlist(services)


async def remove_allowed_root(services: AppServices, path: str) -> AllowlistView:
    """Stop allowing mounts below a folder; agents that mount something there lose it at their next start."""
    file = services.settings.paths.mount_allowlist
    allowlist = load_allowlist(file)
    wanted = _expand(path.strip())
    kept = [r for r in allowlist.roots if r.path != wanted and not _same_folder(r.path, wanted)]
    if len(kept) == len(allowlist.roots):
        raise NotFound(f"{path} is not an allowed root; the allowlist has: "
                       f"{', '.join(str(r.path) for r in allowlist.roots) or 'no roots'}")
    save_allowlist(file, Allowlist(roots=tuple(kept), blocked_patterns=allowlist.blocked_patterns))
    log.info("mount allowlist: %s no longer allowed", wanted)
    services.ctx.events.publish("mounts.allowlist_changed", removed=str(wanted))
    return await get_allowlist(services)


def _check_root(services: AppServices, path: str) -> Path:
    """A root must be an existing folder, not a secret, and not inside NanoClaw's own data or settings."""
    if not path or not path.strip():
        raise UserError("name the folder to allow")
    root = _expand(path.strip())
    if not root.is_absolute():
        raise UserError(f"{path!r} must be an absolute path (or start with ~)")
    # The same checks a mount of the root itself would get (exists, absolute, blocked names), nothing written twice.
    probe = Allowlist(roots=(AllowedRoot(root),))
    _, refused = resolve_mounts([MountRequest(str(root))], probe, protected=[])
    if refused:
        raise UserError(refused[0].reason)
    resolved = root.resolve()
    if not resolved.is_dir():
        raise UserError(f"{resolved} is not a folder")
    for guarded in _protected(services):
        inside = guarded.resolve()
        if resolved == inside or resolved.is_relative_to(inside):
            raise UserError(f"{resolved} is inside NanoClaw's own data or settings ({inside}); allow a folder "
                            "outside it")
    return root


def _same_folder(a: Path, b: Path) -> bool:
    with contextlib.suppress(OSError, RuntimeError):
        return a.resolve() == b.resolve()
    return False


def _expand(path: str) -> Path:
    try:
        return Path(path).expanduser()
    except RuntimeError:
        return Path(path)


def _protected(services: AppServices) -> list[Path]:
    paths = services.settings.paths
    return [paths.home, paths.config]


def _empty_allowlist(services: AppServices) -> AllowlistView:
    return AllowlistView(str(services.settings.paths.mount_allowlist), [], [], list(DEFAULT_BLOCKED_PATTERNS))
