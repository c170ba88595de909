"""Our tools, defined once as ``ToolSpec``s that every provider adapts (SDK MCP server, Anthropic tools, functions).

Parameters follow the original's tools (reference §3) with snake_case keys. Every tool writes rows into
``outbound.db`` (or reads ``inbound.db``); none talks to the host directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from agent_runner.tools import actions, messaging, questions
from agent_runner.tools.base import ToolSpec
from agent_runner.tools.context import CurrentBatch, ToolContext, schema, string

Impl = Callable[[ToolContext, dict[str, Any]], Awaitable[str]]

_TO = string("Destination name to send to. Omit it to answer the chat you are talking with.")
_MESSAGE_ID = {"type": "integer", "description": "The id of the message (as shown in id=\"…\")."}
_TASK_ID = string("The task's id (as returned by schedule_task or shown by list_tasks).")
_STRINGS = {"type": "array", "items": {"type": "string"}}

_SPECS: tuple[tuple[str, str, dict[str, Any], Impl], ...] = (
    (
        "send_message",
        "Send a message now, before your turn ends: progress on a long task, or a message to another destination. "
        "Returns the new message's id.",
        schema({"text": string("The message text."), "to": _TO}, ["text"]),
        messaging.send_message,
    ),
    (
        "send_file",
        "Send a file (with optional text). The path is absolute or relative to your agent folder.",
        schema({
            "path": string("The file to send."),
            "to": _TO,
            "text": string("Text to send with the file."),
            "filename": string("The name the recipient sees (defaults to the file's own name)."),
        }, ["path"]),
        messaging.send_file,
    ),
    (
        "edit_message",
        "Replace the text of a message you sent earlier.",
        schema({"message_id": _MESSAGE_ID, "text": string("The new text.")}, ["message_id", "text"]),
        messaging.edit_message,
    ),
    (
        "add_reaction",
        "React to a message with an emoji.",
        schema({"message_id": _MESSAGE_ID, "emoji": string("The emoji, e.g. 👍.")}, ["message_id", "emoji"]),
        messaging.add_reaction,
    ),
    (
        "ask_user_question",
        "Ask a multiple-choice question as buttons and wait for the answer. Blocks until someone picks an option "
        "or the timeout passes (then it fails).",
        schema({
            "title": string("A short title for the card."),
            "question": string("The question."),
            "options": {
                "type": "array",
                "description": "The choices: strings, or objects {label, value?, selected_label?}.",
                "items": {"anyOf": [
                    {"type": "string"},
                    {"type": "object", "properties": {
                        "label": {"type": "string"}, "value": {"type": "string"},
                        "selected_label": {"type": "string"},
                    }, "required": ["label"]},
                ]},
            },
            "timeout": {"type": "number", "description": "Seconds to wait for an answer (default 300)."},
            "to": _TO,
        }, ["title", "question", "options"]),
        questions.ask_user_question,
    ),
    (
        "send_card",
        "Send a display card with a title, a description and link buttons (no answer is expected).",
        schema({
            "card": {"type": "object", "properties": {
                "title": {"type": "string"},
                "description": {"type": "string"},
                "links": {"type": "array", "items": {"type": "object", "properties": {
                    "label": {"type": "string"}, "url": {"type": "string"}}, "required": ["url"]}},
            }, "required": ["title"]},
            "fallback_text": string("Plain text for chats that cannot show cards."),
            "to": _TO,
        }, ["card"]),
        messaging.send_card,
    ),
    (
        "schedule_task",
        "Schedule a prompt to be given to you later, once or repeatedly. Times are in the user's timezone. "
        "An optional bash script runs first; its last output line must be JSON {\"wakeAgent\": bool, \"data\": …}: "
        "you are only woken when wakeAgent is true, and see data.",
        schema({
            "prompt": string("What you should do when the task fires."),
            "process_after": string("When to run first, ISO 8601, e.g. 2026-05-01T09:00."),
            "recurrence": string("A five-field cron expression for repeats, e.g. '0 9 * * 1-5'."),
            "script": string("Optional bash pre-check script."),
        }, ["prompt"]),
        actions.schedule_task,
    ),
    (
        "list_tasks",
        "List your scheduled tasks.",
        schema({"status": {"type": "string", "enum": ["pending", "paused"]}}),
        actions.list_tasks,
    ),
    (
        "update_task",
        "Change a scheduled task. An empty recurrence makes it one-shot; an empty script removes the script.",
        schema({
            "task_id": _TASK_ID,
            "prompt": string("The new prompt."),
            "process_after": string("The new time, ISO 8601."),
            "recurrence": string("The new cron expression, or empty for one-shot."),
            "script": string("The new pre-check script, or empty to remove it."),
        }, ["task_id"]),
        actions.update_task,
    ),
    ("cancel_task", "Cancel a scheduled task and its future repeats.", schema({"task_id": _TASK_ID}, ["task_id"]),
     actions.cancel_task),
    ("pause_task", "Pause a scheduled task.", schema({"task_id": _TASK_ID}, ["task_id"]), actions.pause_task),
    ("resume_task", "Resume a paused task.", schema({"task_id": _TASK_ID}, ["task_id"]), actions.resume_task),
    (
        "create_agent",
        "Ask an admin to create a new agent you can message (you get it as a destination; it gets you as "
        "\"parent\"). Needs approval.",
        schema({"name": string("The new agent's name."),
                "instructions": string("Its starting instructions (seed its memory file).")}, ["name"]),
        actions.create_agent,
    ),
    (
        "install_packages",
        "Ask an admin to install apt or pip packages into your container. Needs approval; your container restarts.",
        schema({"apt": _STRINGS, "pip": _STRINGS, "reason": string("Why you need them (shown to the admin).")},
               ["reason"]),
        actions.install_packages,
    ),
    (
        "request_credential",
        "Ask the owner to add a credential (API token, password) for a host in the NanoClaw app. The value is added "
        "to your requests to that host by NanoClaw on the way out; you never see it. Never ask for a secret in chat.",
        schema({"host": string("The API's host name, e.g. api.github.com."),
                "reason": string("What you need it for (shown to the owner).")}, ["host", "reason"]),
        actions.request_credential,
    ),
    (
        "add_mcp_server",
        "Ask an admin to add an MCP server to your tools. Needs approval; your container restarts.",
        schema({
            "name": string("A short name for the server."),
            "command": string("The command that starts it."),
            "args": _STRINGS,
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
        }, ["name", "command"]),
        actions.add_mcp_server,
    ),
)

_DECLARED_TIMEOUT_MS = {"ask_user_question"}
"""Tools that may legitimately block for long; the host's stuck detection allows their declared timeout."""


def _bind(impl: Impl, ctx: ToolContext) -> Callable[[dict[str, Any]], Awaitable[str]]:
    async def handler(args: dict[str, Any]) -> str:
        return await impl(ctx, args or {})

    return handler


def our_tools(ctx: ToolContext) -> list[ToolSpec]:
    """Our tools bound to ``ctx``; build once per query (they share the context's current batch)."""
    timeout_ms = int(ctx.config.question_timeout_seconds * 1000) + 30_000
    return [
        ToolSpec(name=name, description=description, input_schema=input_schema, handler=_bind(impl, ctx),
                 declared_timeout_ms=timeout_ms if name in _DECLARED_TIMEOUT_MS else None)
        for name, description, input_schema, impl in _SPECS
    ]


__all__ = ["CurrentBatch", "ToolContext", "our_tools"]
