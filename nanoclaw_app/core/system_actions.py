"""System actions: changes the container asks the host to make by writing ``kind="system"`` outbound rows.

The container cannot write ``inbound.db`` or the central DB, so scheduling, creating agents and self-modification
arrive here. Every refusal is told to the agent as a system note (it would otherwise wait for an effect that never
comes), through :func:`write_refusal_note`, so refusals cannot feed a loop. Creating agents, installing packages and
adding MCP servers go through an approval (an agent once made 25 agents in seconds), one card per agent and action at
a time; :func:`apply_create_agent`, :func:`apply_install_packages` and :func:`apply_add_mcp_server` run once an admin
approves. Work an agent gives itself (scheduling) counts against its turn budget like any wake.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from agent_runner.protocol import ContractError, OutboundRow, SystemAction, decode_outbound
from nanoclaw_app.core import scheduling
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.notes import write_refusal_note, write_system_note
from nanoclaw_app.core.notify import notify_owner
from nanoclaw_app.core.projection import reproject_agent
from nanoclaw_app.core.turn_budget import RESUME_ACTION, apply_resume, is_paused
from nanoclaw_app.db import agents, destinations
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import Session
from nanoclaw_app.egress.policy import check_host_pattern
from nanoclaw_app.errors import UserError
from nanoclaw_app.sessions.mounted import MountedDir
from nanoclaw_app.text_safety import clean_text

if TYPE_CHECKING:
    from nanoclaw_app.core.approvals.service import ApprovalService

log = logging.getLogger(__name__)

RequestApproval = Callable[..., Awaitable[str | None]]
"""``await request_approval(session=, action=, payload=, title=, question=)`` → approval id, or None if nobody can."""

MAX_PACKAGES = 20
APT_NAME = re.compile(r"^[a-z0-9][a-z0-9.+-]{1,62}$")
PIP_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?(?:==[A-Za-z0-9.+!-]{1,32})?$")
MCP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MEMORY_FILE = "MEMORY.md"
SELF_SCHEDULED = frozenset({"schedule_task", "update_task", "resume_task"})
CREDENTIAL_ASK_SECONDS = 600.0
"""An agent may ask the owner for a credential for the same host once in this time."""
"""Actions that give the agent future turns of its own: each one counts as a turn (a wake) and none is taken while
the session is paused, so a loop through scheduled tasks stays inside the turn budget."""


class Approval(Protocol):
    """What the approval handlers need of a decided ``pending_approvals`` row."""

    @property
    def payload(self) -> str:
        """The action payload as JSON text."""

    @property
    def session_id(self) -> str | None:
        """The session that asked."""

    @property
    def agent_group_id(self) -> str | None:
        """The agent whose config changes."""


class SystemActions:
    """Applies system rows for delivery; each action is validated and its refusal told to the agent."""

    def __init__(self, ctx: CoreContext, *, request_approval: RequestApproval) -> None:
        self._ctx = ctx
        self._request_approval = request_approval
        self._asking = asyncio.Lock()
        """Checking for a pending card and sending one is a unit: two sessions of one agent may deliver at once."""
        self._handlers: dict[str, Callable[[Session, dict[str, Any]], Awaitable[object]]] = {
            "schedule_task": lambda s, p: scheduling.schedule_task(ctx, s, p),
            "cancel_task": lambda s, p: scheduling.cancel_task(ctx, s, p),
            "pause_task": lambda s, p: scheduling.pause_task(ctx, s, p),
            "resume_task": lambda s, p: scheduling.resume_task(ctx, s, p),
            "update_task": lambda s, p: scheduling.update_task(ctx, s, p),
            "create_agent": self._create_agent,
            "install_packages": self._install_packages,
            "add_mcp_server": self._add_mcp_server,
            "request_credential": self._request_credential,
        }
        self._credential_asks: dict[tuple[str, str], float] = {}
        """(agent, host) -> when the owner was last asked: an agent cannot flood the owner with requests."""

    async def apply(self, session: Session, row: OutboundRow) -> None:
        """Apply one system row. Refusals become notes; unexpected errors propagate so delivery retries."""
        try:
            action = decode_outbound(row.kind, row.content)
        except ContractError as err:
            log.warning("session %s: malformed system row %s: %s", session.id, row.id, err)
            self._ctx.events.publish("system_action.malformed", session_id=session.id, message_out_id=row.id,
                                     error=str(err))
            await write_refusal_note(self._ctx, session.id, f"Your system request was malformed and ignored: {err}")
            return
        assert isinstance(action, SystemAction)
        handler = self._handlers.get(action.action)
        log.info("session %s: system action %s (row %s, request %s)", session.id, action.action, row.id,
                 action.request_id)
        if handler is None:
            log.warning("session %s: unknown system action %r in row %s", session.id, action.action, row.id)
            self._ctx.events.publish("system_action.unknown", session_id=session.id, action=action.action)
            await write_refusal_note(self._ctx, session.id, f"unknown action {action.action!r}: nothing was done")
            return
        try:
            if action.action in SELF_SCHEDULED and await is_paused(self._ctx, session.id):
                raise UserError("you are paused for taking too many turns in a short time; nothing was scheduled")
            await handler(session, action.payload)
            if action.action in SELF_SCHEDULED:
                await self._ctx.waker.wake(session)  # counted like any wake; pokes the running container
        except UserError as err:
            log.info("session %s: %s refused: %s", session.id, action.action, err)
            self._ctx.events.publish("system_action.refused", session_id=session.id, action=action.action,
                                     reason=str(err))
            await write_refusal_note(self._ctx, session.id, f"Your {action.action} request was not applied: {err}")

    # ------------------------------------------------------------------------------------------ create_agent

    async def _create_agent(self, session: Session, payload: dict[str, Any]) -> None:
        name, instructions = agent_request(payload)
        await check_agent_cap(self._ctx)
        agent = await agents.get(self._ctx.db, session.agent_group_id)
        brief = clean_text(instructions)  # shown on the card: one line, nothing invisible
        question = (
            f"Agent {agent.name if agent else session.agent_group_id!r} wants to create a new agent called {name!r}"
            + (f" with these instructions: {brief[:300]}{'…' if len(brief) > 300 else ''}" if brief else "")
            + ". The two could then message each other."
        )
        await self._ask(session, "create_agent", {"name": name, "instructions": instructions},
                        "Create an agent?", question)

    # ------------------------------------------------------------------------------------------ self-modification

    async def _install_packages(self, session: Session, payload: dict[str, Any]) -> None:
        apt = package_names(payload.get("apt"), APT_NAME, "apt")
        pip = package_names(payload.get("pip"), PIP_NAME, "pip")
        if payload.get("npm"):
            raise UserError("npm packages are not supported; ask for apt or pip packages")
        if not apt and not pip:
            raise UserError("no packages named")
        if len(apt) + len(pip) > MAX_PACKAGES:
            raise UserError(f"at most {MAX_PACKAGES} packages per request")
        reason = str(payload.get("reason") or "").strip()[:500]
        agent = await agents.get(self._ctx.db, session.agent_group_id)
        lines = [f"apt: {', '.join(apt)}" if apt else "", f"pip: {', '.join(pip)}" if pip else ""]
        question = (
            f"Agent {agent.name if agent else session.agent_group_id!r} wants to install packages into its "
            f"container — {'; '.join(x for x in lines if x)}."
            + (f" Reason: {reason}" if reason else "")
        )
        await self._ask(session, "install_packages", {"apt": apt, "pip": pip, "reason": reason},
                        "Install packages?", question)

    async def _add_mcp_server(self, session: Session, payload: dict[str, Any]) -> None:
        server = check_mcp_server(payload)
        agent = await agents.get(self._ctx.db, session.agent_group_id)
        shown = " ".join([server["command"], *server["args"]])
        question = (
            f"Agent {agent.name if agent else session.agent_group_id!r} wants to add the MCP server "
            f"{server['name']!r}: {shown}"
            + (f" (environment: {', '.join(sorted(server['env']))})" if server["env"] else "")  # names only
        )
        await self._ask(session, "add_mcp_server", server, "Add MCP server?", question)

    async def _request_credential(self, session: Session, payload: dict[str, Any]) -> None:
        """Send the owner a link to the Credentials page with the host filled in; the value never passes here."""
        try:
            host = check_host_pattern(str(payload.get("host", "")))
        except ValueError as err:
            raise UserError(str(err)) from err
        key = (session.agent_group_id, host)
        now = time.monotonic()
        if now - self._credential_asks.get(key, -CREDENTIAL_ASK_SECONDS) < CREDENTIAL_ASK_SECONDS:
            raise UserError(f"the owner was asked for a {host} credential a few minutes ago; wait for them")
        agent = await agents.get(self._ctx.db, session.agent_group_id)
        reason = clean_text(str(payload.get("reason", "")))[:300]
        link = f"http://127.0.0.1:{self._ctx.settings.port}/credentials?host={quote(host)}"
        text = (f"🔑 {agent.name if agent else 'An agent'} asks for a credential for {host}"
                + (f": {reason}" if reason else ".")
                + f"\n\nAdd it in the NanoClaw app under Credentials (on the computer running NanoClaw: {link})."
                " Never send the token itself in a chat.")
        if not await notify_owner(self._ctx, text):
            raise UserError("no owner can be reached right now; tell the user to add it under Credentials in the app")
        self._credential_asks[key] = now
        self._ctx.events.publish("system_action.credential_requested", session_id=session.id, host=host)

    async def _ask(self, session: Session, action: str, payload: dict[str, Any], title: str, question: str) -> None:
        async with self._asking:
            waiting = await approvals_db.list_pending_approvals(self._ctx.db)
            if any(a.agent_group_id == session.agent_group_id and a.action == action for a in waiting):
                raise UserError(f"you already asked for {action} and nobody has answered yet; "
                                "wait for that answer before asking again")
            approval_id = await self._request_approval(
                session=session, action=action, payload=payload, title=title, question=question
            )
        if approval_id is None:
            # The approvals module tells the agent when nobody can approve; record it here too.
            log.warning("session %s: %s could not be sent for approval", session.id, action)
        self._ctx.events.publish("system_action.approval_requested", session_id=session.id, action=action,
                                 approval_id=approval_id)


def agent_request(payload: dict[str, Any]) -> tuple[str, str]:
    """The name and instructions of a requested agent, checked the same way when asked and when approved."""
    raw = payload.get("name")
    name = clean_text(raw) if isinstance(raw, str) else ""
    if not name:
        raise UserError("the new agent needs a name")
    if len(name) > 64:
        raise UserError("an agent name may have at most 64 characters")
    instructions = payload.get("instructions") or ""
    if not isinstance(instructions, str):
        raise UserError("instructions must be text")
    return name, instructions


async def check_agent_cap(ctx: CoreContext) -> None:
    """Refuse once ``max_agents_created_by_agents`` agents exist at agents' request (approval can be habit)."""
    made = await agents.count_made_by_agents(ctx.db)
    cap = ctx.settings.max_agents_created_by_agents
    if made >= cap:
        raise UserError(f"{made} agents made at agents' request already exist, the most allowed ({cap}); ask the "
                        "owner to delete one, or to create the agent in the app")


def check_mcp_server(payload: dict[str, Any]) -> dict[str, Any]:
    """The checks an MCP server passes whoever adds it (an agent, the app, the CLI); returns the clean entry."""
    name = payload.get("name")
    command = payload.get("command")
    if not isinstance(name, str) or not name.strip():
        raise UserError("the MCP server needs a name")
    if not MCP_NAME.match(name.strip()):
        raise UserError("an MCP server name may use letters, digits, '-' and '_' (at most 64)")
    if not isinstance(command, str) or not command.strip():
        raise UserError("the MCP server needs a command")
    args = payload.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise UserError("args must be a list of strings")
    env = payload.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise UserError("env must map names to string values")
    bad = [k for k in env if not ENV_NAME.match(k)]
    if bad:
        raise UserError(f"invalid environment variable names: {', '.join(bad)}")
    return {"name": name.strip(), "command": command.strip(), "args": args, "env": env}


def package_names(value: object, pattern: re.Pattern[str], label: str) -> list[str]:
    """Checked, de-duplicated package names (the same rules for an agent's request, the app and the CLI)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{label} packages must be a list of names")
    names = [v.strip() for v in value]
    bad = [v for v in names if not pattern.match(v)]
    if bad:
        raise UserError(f"invalid {label} package names: {', '.join(repr(b) for b in bad[:5])}")
    return list(dict.fromkeys(names))


def _payload(approval: Approval) -> dict[str, Any]:
    try:
        data = json.loads(approval.payload)
    except (TypeError, ValueError) as err:
        raise UserError(f"approval payload is not JSON: {err}") from err
    if not isinstance(data, dict):
        raise UserError("approval payload must be an object")
    return data


async def _agent_of(ctx: CoreContext, approval: Approval) -> str:
    if approval.agent_group_id:
        return approval.agent_group_id
    if approval.session_id:
        session = await sessions_db.get(ctx.db, approval.session_id)
        if session is not None:
            return session.agent_group_id
    raise UserError("the approval names no agent")


async def _restart_with_note(ctx: CoreContext, session_id: str | None, note: str) -> None:
    """Stop the container, then leave a note only a fresh container reads (a dying one must not steal it)."""
    if not session_id:
        return
    await ctx.waker.stop(session_id, reason="config changed")
    await write_system_note(ctx, session_id, note, on_wake=True)


def _json_list(text: str) -> list[str]:
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


async def apply_create_agent(ctx: CoreContext, approval: Approval) -> str:
    """Approved ``create_agent``: make the agent, seed its memory and link it both ways with the agent that asked."""
    name, instructions = agent_request(_payload(approval))
    creator = await _agent_of(ctx, approval)
    await check_agent_cap(ctx)
    child = await agents.create(ctx.db, name, created_by=creator)
    seed = (instructions.strip() + "\n" if instructions.strip() else f"# {name}\n").encode()
    await ctx.store.run_io(lambda: _seed_memory(ctx.settings.paths.agents / child.folder, seed))
    local = await destinations.add(ctx.db, creator, name, "agent", child.id)
    await destinations.add(ctx.db, child.id, "parent", "agent", creator)
    await reproject_agent(ctx, creator)
    log.info("agent %s created agent %s (%s) as destination %r", creator, child.id, name, local)
    ctx.events.publish("agent.created", agent_group_id=child.id, name=name, created_by=creator)
    return (f"Created agent {name!r}. Send it messages with <message to=\"{local}\">…</message>; "
            "it can answer you as \"parent\".")


def _seed_memory(folder: Path, text: bytes) -> None:
    """Write the new agent's first memory, by descriptor like every write into an agent folder."""
    with MountedDir.open(folder, create=True) as workspace:
        if workspace.lstat(MEMORY_FILE) is None:
            workspace.write_new(MEMORY_FILE, text)


async def apply_install_packages(ctx: CoreContext, approval: Approval) -> str:
    """Approved ``install_packages``: add the packages to the agent's config and restart its container.

    Returns a one-line result for the agent; the on-wake note asks the fresh container to verify.
    """
    payload = _payload(approval)
    agent_id = await _agent_of(ctx, approval)
    config = await agents.get_config(ctx.db, agent_id)
    if config is None:
        raise UserError(f"agent {agent_id} has no container config")
    apt = package_names(payload.get("apt"), APT_NAME, "apt")
    pip = package_names(payload.get("pip"), PIP_NAME, "pip")
    merged_apt = list(dict.fromkeys([*_json_list(config.packages_apt), *apt]))
    merged_pip = list(dict.fromkeys([*_json_list(config.packages_pip), *pip]))
    await agents.update_config(
        ctx.db, agent_id, packages_apt=json.dumps(merged_apt), packages_pip=json.dumps(merged_pip)
    )
    wanted = ", ".join([*apt, *pip]) or "nothing new"
    await _restart_with_note(
        ctx, approval.session_id,
        f"Your container restarted with newly installed packages ({wanted}). "
        "Check that they work before you continue.",
    )
    ctx.events.publish("agent.config_changed", agent_group_id=agent_id, change="packages")
    return f"Your package request was approved: {wanted} added to your container, which restarts."


async def apply_add_mcp_server(ctx: CoreContext, approval: Approval) -> str:
    """Approved ``add_mcp_server``: add the server to the agent's config and restart its container."""
    payload = _payload(approval)
    agent_id = await _agent_of(ctx, approval)
    config = await agents.get_config(ctx.db, agent_id)
    if config is None:
        raise UserError(f"agent {agent_id} has no container config")
    name = payload.get("name")
    command = payload.get("command")
    if not isinstance(name, str) or not MCP_NAME.match(name) or not isinstance(command, str) or not command:
        raise UserError("the approved MCP server has no valid name or command")
    try:
        servers = json.loads(config.mcp_servers)
    except ValueError:
        servers = {}
    if not isinstance(servers, dict):
        servers = {}
    servers[name] = {"command": command, "args": list(payload.get("args") or []), "env": dict(payload.get("env") or {})}
    await agents.update_config(ctx.db, agent_id, mcp_servers=json.dumps(servers))
    await _restart_with_note(
        ctx, approval.session_id,
        f"Your container restarted with the new MCP server {name!r}. "
        "Check that its tools work before you continue.",
    )
    ctx.events.publish("agent.config_changed", agent_group_id=agent_id, change="mcp_servers")
    return f"Your MCP server {name!r} was approved and added to your container, which restarts."


def register_approval_handlers(approvals: ApprovalService) -> None:
    """What runs once an admin approves an agent's request; the host and the CLI register the same handlers."""
    approvals.register_handler(RESUME_ACTION, apply_resume)
    approvals.register_handler("create_agent", apply_create_agent)
    approvals.register_handler("install_packages", apply_install_packages)
    approvals.register_handler("add_mcp_server", apply_add_mcp_server)
