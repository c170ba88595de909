"""Tools that ask the host to change something: scheduled tasks, new agents, packages, MCP servers.

The container cannot write ``inbound.db`` or the central DB, so each of these writes a ``kind="system"`` row with a
``SystemAction``; the host applies it while delivering and tells the agent in a system note when it refuses. Payload
keys are exactly the ones ``nanoclaw_app/core/system_actions.py`` and ``core/scheduling.py`` read. ``list_tasks`` only
reads, so it goes to ``inbound.db`` directly.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from agent_runner.formatter import local_time, zone
from agent_runner.protocol import MessageKind, SystemAction
from agent_runner.session_db import NewOutbound, new_id, parse_utc
from agent_runner.tools.base import ToolError
from agent_runner.tools.context import ToolContext, opt_text_arg, str_list_arg, text_arg

MAX_PACKAGES = 20
_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z?LW#]+$")
_CONFIRM = "The host applies it shortly; if it cannot, you will get a system note saying why."


async def _request(ctx: ToolContext, action: str, payload: dict[str, Any]) -> str:
    """Write the system row; returns its request id."""
    request_id = new_id("req")
    origins = ctx.batch.origins()
    await ctx.io(ctx.db.write_messages, [NewOutbound(
        kind=MessageKind.SYSTEM,
        content=SystemAction(action=action, payload=payload, request_id=request_id).to_json(),
        in_reply_to=origins[-1].id if origins else None,
    )])
    return request_id


def _check_when(text: str) -> str:
    raw = text.strip()
    try:
        datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError as err:
        raise ToolError(f"`process_after` {text!r} is not an ISO date-time such as 2026-05-01T09:00") from err
    return raw


def _check_cron(text: str) -> str:
    fields = text.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ToolError(f"`recurrence` {text!r} must be a cron expression with five fields, e.g. '0 9 * * 1-5'")
    return " ".join(fields)


def _task_id(args: dict[str, Any]) -> str:
    value = text_arg(args, "task_id")
    return value.strip()


async def schedule_task(ctx: ToolContext, args: dict[str, Any]) -> str:
    """Schedule a prompt for later, once or on a cron recurrence in the user's timezone."""
    prompt = text_arg(args, "prompt")
    when = opt_text_arg(args, "process_after")
    recurrence = opt_text_arg(args, "recurrence")
    script = opt_text_arg(args, "script")
    if when is None and recurrence is None:
        raise ToolError("give `process_after` (when to run), `recurrence` (a cron expression), or both")
    task_id = new_id("task")
    payload: dict[str, Any] = {"task_id": task_id, "prompt": prompt}
    if when is not None:
        payload["process_after"] = _check_when(when)
    if recurrence is not None:
        payload["recurrence"] = _check_cron(recurrence)
    if script is not None:
        payload["script"] = script
    await _request(ctx, "schedule_task", payload)
    timing = " and ".join(x for x in (
        f"first at {payload['process_after']}" if when else "", f"repeating '{payload['recurrence']}'" if recurrence
        else "") if x)
    return f"Task {task_id} scheduled ({timing}). {_CONFIRM}"


async def update_task(ctx: ToolContext, args: dict[str, Any]) -> str:
    """Change a task's prompt, time, recurrence or script; an empty recurrence makes it one-shot."""
    task_id = _task_id(args)
    payload: dict[str, Any] = {"task_id": task_id}
    prompt = opt_text_arg(args, "prompt")
    if prompt is not None:
        payload["prompt"] = prompt
    when = opt_text_arg(args, "process_after")
    if when is not None:
        payload["process_after"] = _check_when(when)
    recurrence = opt_text_arg(args, "recurrence", allow_empty=True)
    if recurrence is not None:
        payload["recurrence"] = _check_cron(recurrence) if recurrence.strip() else ""
    script = opt_text_arg(args, "script", allow_empty=True)
    if script is not None:
        payload["script"] = script
    if len(payload) == 1:
        raise ToolError("nothing to change: give prompt, process_after, recurrence or script")
    await _request(ctx, "update_task", payload)
    return f"Update of task {task_id} requested. {_CONFIRM}"


async def _series(ctx: ToolContext, action: str, args: dict[str, Any], done: str) -> str:
    task_id = _task_id(args)
    await _request(ctx, action, {"task_id": task_id})
    return f"Task {task_id} {done}. {_CONFIRM}"


async def cancel_task(ctx: ToolContext, args: dict[str, Any]) -> str:
    """End a task and all its future occurrences."""
    return await _series(ctx, "cancel_task", args, "will be cancelled")


async def pause_task(ctx: ToolContext, args: dict[str, Any]) -> str:
    """Hold a task until it is resumed."""
    return await _series(ctx, "pause_task", args, "will be paused")


async def resume_task(ctx: ToolContext, args: dict[str, Any]) -> str:
    """Release a paused task."""
    return await _series(ctx, "resume_task", args, "will be resumed")


async def list_tasks(ctx: ToolContext, args: dict[str, Any]) -> str:
    """The scheduled tasks of this session, one line per series."""
    status = opt_text_arg(args, "status")
    if status is not None and status not in ("pending", "paused"):
        raise ToolError("`status` is 'pending' or 'paused' (or omitted for both)")
    tasks = await ctx.io(ctx.db.list_tasks, status)
    if not tasks:
        return "No scheduled tasks."
    tz = zone(ctx.config.timezone)
    lines = []
    for task in tasks:
        when = "no time set"
        if task.process_after:
            try:
                when = f"next {local_time(parse_utc(task.process_after), tz)}"
            except ValueError:
                when = f"next {task.process_after}"
        repeat = f", repeats '{task.recurrence}'" if task.recurrence else ""
        lines.append(f"- {task.series_id} [{task.status}] {when}{repeat}: {task.prompt_preview}")
    return "\n".join(lines)


async def create_agent(ctx: ToolContext, args: dict[str, Any]) -> str:
    """Ask the host to create a new agent that this one can message."""
    name = text_arg(args, "name")
    instructions = opt_text_arg(args, "instructions") or ""
    await _request(ctx, "create_agent", {"name": name.strip(), "instructions": instructions})
    return (f"Request to create agent {name.strip()!r} sent to an admin for approval. If approved, a system note "
            "tells you the name to message it by; otherwise it says why not. Ask only once.")


async def install_packages(ctx: ToolContext, args: dict[str, Any]) -> str:
    """Ask an admin to approve installing apt/pip packages into this agent's container."""
    apt = str_list_arg(args, "apt")
    pip = str_list_arg(args, "pip")
    reason = text_arg(args, "reason")
    if not apt and not pip:
        raise ToolError("name at least one package in `apt` or `pip`")
    if len(apt) + len(pip) > MAX_PACKAGES:
        raise ToolError(f"at most {MAX_PACKAGES} packages per request")
    await _request(ctx, "install_packages", {"apt": apt, "pip": pip, "reason": reason})
    return ("Package request sent to an admin for approval. If approved, your container restarts with the packages "
            "and you will be asked to check them.")


async def request_credential(ctx: ToolContext, args: dict[str, Any]) -> str:
    """Ask the owner to add a credential for a host in the app; the value never passes through the agent."""
    host = text_arg(args, "host").strip()
    reason = text_arg(args, "reason")
    if not host or len(host) > 253:
        raise ToolError("`host` must be a host name like api.github.com")
    await _request(ctx, "request_credential", {"host": host, "reason": reason})
    return ("The owner was sent a link to add a credential for this host in NanoClaw. Once they have, your requests "
            "to it get the credential added on the way out; never ask for the value itself.")


async def add_mcp_server(ctx: ToolContext, args: dict[str, Any]) -> str:
    """Ask an admin to approve adding an MCP server to this agent."""
    name = text_arg(args, "name")
    command = text_arg(args, "command")
    env = args.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ToolError("`env` must map names to string values")
    payload = {"name": name.strip(), "command": command.strip(), "args": str_list_arg(args, "args", clean=False),
               "env": env}
    await _request(ctx, "add_mcp_server", payload)
    return ("MCP server request sent to an admin for approval. If approved, your container restarts with it and you "
            "will be asked to check its tools.")


__all__ = [
    "add_mcp_server",
    "cancel_task",
    "create_agent",
    "install_packages",
    "list_tasks",
    "pause_task",
    "request_credential",
    "resume_task",
    "schedule_task",
    "update_task",
]
