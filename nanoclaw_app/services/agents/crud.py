"""Agents themselves: list, look up, create, rename and reconfigure, restart, delete.

Config changes take effect when the agent's next container starts; :func:`restart_agent` stops the running ones so the
next message starts a fresh one. Stopping containers needs the process that owns them, so a CLI process refuses while
the app runs instead of leaving them out of step.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from agent_runner.providers.registry import PROVIDERS
from nanoclaw_app.core.projection import reproject_agent
from nanoclaw_app.core.system_actions import MEMORY_FILE
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import AgentGroup, Session
from nanoclaw_app.errors import UserError
from nanoclaw_app.runfile import read_run_file
from nanoclaw_app.services.agents import lookup
from nanoclaw_app.services.agents.internet import access_of
from nanoclaw_app.services.agents.memory import atomic_write
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.text_safety import clean_name
from nanoclaw_app.timeutil import utcnow

log = logging.getLogger(__name__)

MAX_NAME = 64
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@\[\]+-]{0,127}$")
TRASH_DIR = "deleted-agents"
"""Where a deleted agent's workspace and sessions are moved (inside the home dir), never destroyed."""


@dataclass
class ChatLink:
    """A chat the agent answers in."""

    messaging_group_id: str
    channel_type: str
    name: str
    engage_mode: str


@dataclass
class SessionInfo:
    """One active session of the agent and whether its container runs."""

    id: str
    messaging_group_id: str | None
    thread_id: str | None
    container_status: str
    last_active: str | None


@dataclass
class AgentSummary:
    """An agent with what the list shows: its model, how busy it is, where it answers."""

    id: str
    name: str
    folder: str
    provider: str
    model: str | None
    assistant_name: str | None
    sessions: int
    running: int
    chats: list[ChatLink]
    created_at: str


@dataclass
class AgentDetail(AgentSummary):
    """One agent with its sessions and workspace."""

    workspace: str = ""
    session_list: list[SessionInfo] = field(default_factory=list)
    updated_at: str = ""
    internet_mode: str = "open"
    """``open`` or ``sites`` (see ``services/agents/internet.py``); the home network is never reachable."""
    internet_sites: list[str] = field(default_factory=list)


@dataclass
class RestartResult:
    """What a restart did."""

    agent_id: str
    stopped: int
    live: bool
    message: str


@dataclass
class DeleteResult:
    """What a delete did, and where the agent's files went."""

    agent_id: str
    name: str
    unwired_chats: int
    stopped: int
    moved_to: str | None


def providers() -> list[str]:
    """The provider names an agent may use (the runner's registry)."""
    return sorted(PROVIDERS)


async def list_agents(services: AppServices) -> list[AgentSummary]:
    """Every agent, oldest first, with session counts, running containers and wired chats."""
    db = services.ctx.db
    agents = await agents_db.list_all(db)
    configs = await agents_db.list_configs(db)
    counts = await agents_db.session_counts(db)
    chats = await _chats(services, None)
    out = []
    for agent in agents:
        row = configs.get(agent.id)
        sessions, running = counts.get(agent.id, (0, 0))
        out.append(AgentSummary(
            id=agent.id, name=agent.name, folder=agent.folder,
            provider=row.provider if row else "claude", model=row.model if row else None,
            assistant_name=row.assistant_name if row else None, sessions=sessions, running=running,
            chats=chats.get(agent.id, []), created_at=agent.created_at,
        ))
    return out


async def get_agent(services: AppServices, agent_id: str) -> AgentDetail:
    """One agent with its config, chats, active sessions and workspace folder."""
    agent = await lookup.agent(services, agent_id)
    config = await lookup.config(services, agent.id)
    internet = access_of(agent)
    sessions = await sessions_db.list_for_agent(services.ctx.db, agent.id)
    chats = await _chats(services, agent.id)
    return AgentDetail(
        id=agent.id, name=agent.name, folder=agent.folder, provider=config.provider, model=config.model,
        assistant_name=config.assistant_name, sessions=len(sessions),
        running=sum(1 for s in sessions if s.container_status != "stopped"), chats=chats.get(agent.id, []),
        created_at=agent.created_at, workspace=str(lookup.workspace(services, agent)),
        session_list=[SessionInfo(s.id, s.messaging_group_id, s.thread_id, s.container_status, s.last_active)
                      for s in sessions],
        updated_at=config.updated_at, internet_mode=internet.mode, internet_sites=internet.sites,
    )


async def find_agent(services: AppServices, ref: str) -> AgentGroup:
    """An agent by id, folder or name (case-insensitive), for the command line."""
    return await lookup.agent_by_ref(services.ctx.db, ref)


async def create_agent(
    services: AppServices, name: str, provider: str = "claude", model: str | None = None
) -> AgentDetail:
    """A new agent with its workspace and a memory file headed by its name; it answers nowhere until wired."""
    ctx = services.ctx
    clean = await _free_name(services, name, None)
    chosen = _provider(provider)
    chosen_model = _model(model)
    agent = await agents_db.create(ctx.db, clean)
    await agents_db.update_config(ctx.db, agent.id, provider=chosen, model=chosen_model)
    workspace = lookup.workspace(services, agent)

    def make() -> None:
        workspace.mkdir(parents=True, exist_ok=True, mode=0o700)
        memory = workspace / MEMORY_FILE
        if not memory.exists():
            atomic_write(memory, f"# {clean}\n".encode())

    await ctx.store.run_io(make)
    log.info("agent %s (%s) created by the owner: %s %s", agent.id, clean, chosen, chosen_model or "(default model)")
    ctx.events.publish("agent.created", agent_group_id=agent.id, name=clean, created_by="owner")
    return await get_agent(services, agent.id)


async def update_agent(
    services: AppServices,
    agent_id: str,
    *,
    name: str | None = None,
    provider: str | None = None,
    model: str | None = None,
    assistant_name: str | None = None,
) -> AgentDetail:
    """Rename, or change provider, model or the name the agent calls itself (``""`` clears model and assistant name).

    Nothing changes unless every given value is valid. The running container keeps its old settings until restarted.
    """
    ctx = services.ctx
    agent = await lookup.agent(services, agent_id)
    changes: dict[str, object] = {}
    if provider is not None:
        changes["provider"] = _provider(provider)
    if model is not None:
        changes["model"] = _model(model)
    if assistant_name is not None:
        shown = assistant_name.strip()
        changes["assistant_name"] = _clean_name(shown, "the assistant name") if shown else None
    new_name = await _free_name(services, name, agent.id) if name is not None else None
    if new_name is not None and new_name != agent.name:
        await agents_db.rename(ctx.db, agent.id, new_name)
    await agents_db.update_config(ctx.db, agent.id, **changes)
    if changes or (new_name is not None and new_name != agent.name):
        log.info("agent %s changed by the owner: %s", agent.id, sorted([*changes, *(["name"] if new_name else [])]))
        ctx.events.publish("agent.config_changed", agent_group_id=agent.id, change="settings")
    return await get_agent(services, agent.id)


async def delete_agent(services: AppServices, agent_id: str, *, force: bool = False) -> DeleteResult:
    """Delete an agent; its files are moved to ``<home>/deleted-agents/`` rather than destroyed.

    Refused while it answers in a chat unless ``force`` (then those wirings go too), because deleting it would silently
    leave those chats unanswered. Its running containers are stopped first; without a live host that is only safe when
    no host runs at all. Other agents lose it as a destination. Moving the workspace aside also keeps a later agent of
    the same name from inheriting this one's memory.
    """
    ctx = services.ctx
    agent = await lookup.agent(services, agent_id)
    chats = (await _chats(services, agent.id)).get(agent.id, [])
    if chats and not force:
        names = ", ".join(c.name for c in chats[:5]) + (" …" if len(chats) > 5 else "")
        raise UserError(
            f"{agent.name} answers in {len(chats)} chat(s) ({names}); unwire them on the Chats page first, "
            "or delete with force to unwire them too"
        )
    sessions = await sessions_db.list_for_agent(ctx.db, agent.id)
    stopped = await _stop_containers(services, sessions, "agent deleted")
    parents = await agents_db.delete(ctx.db, agent.id)
    # A message that arrived while the containers stopped may have woken one again: stop it before its folder moves.
    stopped += await _stop_containers(services, sessions, "agent deleted")
    for parent in parents:
        await reproject_agent(ctx, parent)
    workspace = lookup.workspace(services, agent)
    sessions_dir = ctx.store.root / agent.id
    trash = services.settings.paths.home / TRASH_DIR / f"{agent.folder}-{utcnow():%Y%m%d-%H%M%S}"

    def move() -> str | None:
        moved = False
        for source, name in ((workspace, "workspace"), (sessions_dir, "sessions")):
            if source.exists() and not source.is_symlink():
                trash.mkdir(parents=True, exist_ok=True, mode=0o700)
                # A rename, never shutil.move's copy fallback: copying would read through links the agent planted.
                source.rename(trash / name)
                moved = True
        return str(trash) if moved else None

    try:
        moved_to = await ctx.store.run_io(move)
    except OSError as err:
        # The database rows are gone already; say where the files still are so nothing is lost silently.
        log.error("agent %s deleted, but moving its files to %s failed: %s", agent.id, trash, err)
        ctx.events.publish("agent.deleted", agent_group_id=agent.id, name=agent.name, files_error=str(err))
        raise UserError(
            f"{agent.name} was deleted, but its files could not be moved to {trash}: {err}. They are still in "
            f"{workspace} and {sessions_dir}; move or delete them by hand"
        ) from err
    log.info("agent %s (%s) deleted by the owner; %d chat(s) unwired, files in %s", agent.id, agent.name,
             len(chats), moved_to)
    ctx.events.publish("agent.deleted", agent_group_id=agent.id, name=agent.name)
    return DeleteResult(agent.id, agent.name, len(chats), stopped, moved_to)


async def restart_agent(services: AppServices, agent_id: str) -> RestartResult:
    """Stop every running container of the agent; the next message starts a fresh one with the current settings."""
    agent = await lookup.agent(services, agent_id)
    if not services.live and not _host_runs(services):
        return RestartResult(agent.id, 0, False, "NanoClaw is not running, so no container of this agent runs; "
                                                 "its next start uses the current settings")
    sessions = await sessions_db.list_for_agent(services.ctx.db, agent.id)
    stopped = await _stop_containers(services, sessions, "restarted by the owner")
    services.ctx.events.publish("agent.restarted", agent_group_id=agent.id, stopped=stopped)
    message = (f"stopped {stopped} container(s); the next message starts a fresh one" if stopped
               else "no container of this agent was running; the next message starts one with the current settings")
    return RestartResult(agent.id, stopped, True, message)


async def _chats(services: AppServices, agent_id: str | None) -> dict[str, list[ChatLink]]:
    rows = await agents_db.wired_chats(services.ctx.db, agent_id)
    out: dict[str, list[ChatLink]] = {}
    for r in rows:
        out.setdefault(r["agent_group_id"], []).append(
            ChatLink(r["messaging_group_id"], r["channel_type"], r["name"] or r["platform_id"], r["engage_mode"])
        )
    return out


async def _stop_containers(services: AppServices, sessions: Sequence[Session], reason: str) -> int:
    """Stop each running session container; a CLI process cannot, so it refuses while a host runs them."""
    if not services.live:
        if _host_runs(services):
            raise UserError("NanoClaw is running and owns this agent's containers: do this in the app, or let "
                            "`nanoclaw agents` forward it to the running app")
        return 0
    stopped = 0
    for session in sessions:
        if await services.ctx.waker.is_running(session.id):
            await services.ctx.waker.stop(session.id, reason=reason)
            stopped += 1
    return stopped


def _host_runs(services: AppServices) -> bool:
    return read_run_file(services.settings.paths) is not None


def _clean_name(name: str, what: str) -> str:
    return clean_name(name, what, MAX_NAME)


async def _free_name(services: AppServices, name: str, own_id: str | None) -> str:
    clean = _clean_name(name, "the agent name")
    for other in await agents_db.list_all(services.ctx.db):
        if other.id != own_id and other.name.casefold() == clean.casefold():
            raise UserError(f"an agent called {other.name!r} exists already; pick another name")
    return clean


def _provider(name: str) -> str:
    clean = (name or "").strip()
    if clean not in PROVIDERS:
        raise UserError(f"unknown provider {clean!r}; choose one of {', '.join(providers())}")
    return clean


def _model(model: str | None) -> str | None:
    if model is None or not model.strip():
        return None
    clean = model.strip()
    if not _MODEL.match(clean):
        raise UserError(f"{clean!r} is not a model name (letters, digits and . _ - : / @ [ ] +, at most 128); "
                        "leave it empty for the provider's default")
    return clean
