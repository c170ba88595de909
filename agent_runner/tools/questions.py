"""``ask_user_question``: post a card with options and block until someone picks one (or the timeout passes).

Button values are the option's index, not its text: Telegram allows 64 bytes of callback data for the prefix, the
question id and the value together, and an option's text can be any length. The answer is mapped back here.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from agent_runner.protocol import AckStatus, AskQuestionOut, MessageKind, QuestionOption
from agent_runner.session_db import NewOutbound, short_id
from agent_runner.tools.base import ToolError
from agent_runner.tools.context import ToolContext, number_arg, opt_text_arg, resolve_address, text_arg

log = logging.getLogger(__name__)

MAX_OPTIONS = 10
MAX_TIMEOUT_SECONDS = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class _Choice:
    label: str
    value: str
    selected_label: str | None


def _choices(raw: object) -> list[_Choice]:
    if not isinstance(raw, list) or not raw:
        raise ToolError("`options` must be a non-empty list")
    if len(raw) > MAX_OPTIONS:
        raise ToolError(f"at most {MAX_OPTIONS} options")
    choices: list[_Choice] = []
    for item in raw:
        if isinstance(item, str) and item.strip():
            choices.append(_Choice(label=item.strip(), value=item.strip(), selected_label=None))
        elif isinstance(item, dict) and isinstance(item.get("label"), str) and item["label"].strip():
            label = item["label"].strip()
            value = item.get("value")
            selected = item.get("selected_label", item.get("selectedLabel"))
            choices.append(_Choice(
                label=label,
                value=value.strip() if isinstance(value, str) and value.strip() else label,
                selected_label=selected.strip() if isinstance(selected, str) and selected.strip() else None,
            ))
        else:
            raise ToolError("each option is a string or an object with a `label`")
    return choices


async def ask_user_question(ctx: ToolContext, args: dict[str, Any]) -> str:
    """Post the card, then wait for the host to write the answer into ``inbound.db``."""
    title = text_arg(args, "title")
    question = text_arg(args, "question")
    choices = _choices(args.get("options"))
    timeout = min(number_arg(args, "timeout", ctx.config.question_timeout_seconds), MAX_TIMEOUT_SECONDS)
    address = await ctx.io(resolve_address, ctx, opt_text_arg(args, "to"))
    if address.is_agent:
        raise ToolError("questions are for people; ask another agent with a message instead")
    question_id = short_id("q")
    options = [QuestionOption(label=c.label, value=str(i), selected_label=c.selected_label).to_dict()
               for i, c in enumerate(choices)]
    await ctx.write(NewOutbound(
        kind=MessageKind.CHAT,
        content=AskQuestionOut(question_id=question_id, title=title, question=question, options=options).to_json(),
        channel_type=address.channel_type, platform_id=address.platform_id, thread_id=address.thread_id,
        in_reply_to=address.in_reply_to,
    ))
    log.info("question %s asked (%d options, %.0f s timeout)", question_id, len(choices), timeout)
    selected = await _wait_for_answer(ctx, question_id, timeout)
    if selected is None:
        raise ToolError(f"nobody answered within {timeout:.0f} s; the question was left unanswered")
    try:
        choice = choices[int(selected)]
    except (ValueError, IndexError):
        log.warning("question %s got an answer %r that matches no option", question_id, selected)
        return f"The answer was: {selected}"
    if choice.value != choice.label:
        return f"The user chose: {choice.label} (value: {choice.value})"
    return f"The user chose: {choice.label}"


async def _wait_for_answer(ctx: ToolContext, question_id: str, seconds: float) -> str | None:
    """Look for the answer after every inbound change (or poll tick) for ``seconds``; None if it never came."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        version = ctx.changes.version if ctx.changes is not None else 0
        found = await ctx.io(ctx.db.question_response, question_id)
        if found is not None:
            row_id, response = found
            # Acked so the host marks the answer row completed instead of leaving it pending forever.
            await ctx.io(ctx.db.set_acks, [row_id], AckStatus.COMPLETED)
            return response.selected_option
        if ctx.heartbeat is not None:
            ctx.heartbeat.beat()
        remaining = deadline - loop.time()
        if remaining <= 0:
            return None
        wait = min(remaining, ctx.config.poll_seconds)
        if ctx.changes is not None:
            await ctx.changes.wait(version, wait)
        else:
            await asyncio.sleep(wait)


__all__ = ["ask_user_question"]
