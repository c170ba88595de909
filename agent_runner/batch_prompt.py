"""A batch of inbound rows as the prompt text the model reads: the messages, quoted replies and who is talking.

Blocking (it reads the session database); the loop runs it on a worker thread.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence

from agent_runner.config import RunnerConfig
from agent_runner.formatter import format_batch
from agent_runner.people_memory import conversation_people, people_note
from agent_runner.protocol import ChatContent, ContractError, InboundRow, MessageKind
from agent_runner.session_db import SessionDB


def batch_prompt(db: SessionDB, rows: Sequence[InboundRow], config: RunnerConfig) -> str:
    """The prompt for ``rows``: formatted messages, then a note naming everyone in the conversation."""
    destinations = db.destinations()
    quoted: list[str] = []
    for row in rows:
        if row.kind != MessageKind.CHAT:
            continue
        with contextlib.suppress(ValueError, ContractError, AttributeError):
            reply = ChatContent.from_dict(json.loads(row.content)).reply_to or {}
            if isinstance(reply.get("message_id"), str):
                quoted.append(reply["message_id"])
    reply_seqs = db.seqs_for_platform_messages(quoted) if quoted else {}
    text = format_batch(rows, destinations, config.timezone, workspace=config.session_dir, reply_seqs=reply_seqs)
    note = people_note(config.agent_dir, conversation_people(rows, db.newest_chat))
    return f"{text}\n{note}" if note else text
