"""A hostile agent for the loop attacks: the in-process runtime whose turns write whatever outbound rows a script says.

A real container can write any row into its own ``outbound.db`` (system actions, messages to any agent id), so the
script stands for an agent steered by a prompt injection, or for the shell in the container writing the rows itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from agent_runner.protocol import AGENT_CHANNEL, InboundRow, MessageKind, SystemAction, TextOut
from nanoclaw_app.sessions.store import INBOUND, OUTBOUND
from tests.fakes.runtime import InProcessRuntime, Out, _connect, write_rows


def to_agent(agent_id: str, text: str) -> Out:
    """A message addressed straight to another agent's id (what ``<message to=…>`` becomes)."""
    return Out(MessageKind.CHAT.value, TextOut(text=text).to_json(), AGENT_CHANNEL, agent_id)


def action(verb: str, **payload: object) -> Out:
    """A system action row (``create_agent``, ``schedule_task``, …)."""
    return Out(MessageKind.SYSTEM.value, SystemAction(action=verb, payload=dict(payload)).to_json())


def reply(row: InboundRow, text: str) -> Out:
    """An answer in the chat the row came from."""
    return Out(MessageKind.CHAT.value, TextOut(text=text).to_json(), row.channel_type, row.platform_id, row.id)


def write_outbound(folder: Path, rows: Sequence[Out], completed: Sequence[str] = ()) -> None:
    """Write rows into the session's ``outbound.db`` and complete acks at once (as the container's shell can)."""
    write_rows(folder, rows, completed)


Script = Callable[[str, list[InboundRow]], list[Out]]
"""``(session_id, rows of this turn) -> rows to write``."""


@dataclass
class HostileRuntime(InProcessRuntime):
    """``InProcessRuntime`` whose agent answers every turn with the rows ``script`` returns; counts turns."""

    script: Script | None = None
    turns: dict[str, int] = field(default_factory=dict)

    def _answer(self, session_id: str, rows: list[InboundRow]) -> list[Out]:
        self.turns[session_id] = self.turns.get(session_id, 0) + 1
        return self.script(session_id, rows) if self.script is not None else []


def quiet(folder: Path) -> bool:
    """Nothing left to do in the session: no row waiting for the agent, none claimed, none waiting for delivery."""
    conn = _connect(folder / INBOUND, write=False)
    try:
        conn.execute("ATTACH DATABASE ? AS ob", (f"file:{quote(str(folder / OUTBOUND))}?mode=ro",))
        waiting = conn.execute(
            "SELECT COUNT(*) FROM messages_in m WHERE m.trigger = 1 AND m.kind != 'system'"
            " AND NOT EXISTS (SELECT 1 FROM ob.processing_ack a WHERE a.message_id = m.id AND a.status = 'completed')"
            " AND m.status = 'pending'"
        ).fetchone()[0]
        undelivered = conn.execute(
            "SELECT COUNT(*) FROM ob.messages_out o WHERE NOT EXISTS"
            " (SELECT 1 FROM delivered d WHERE d.message_out_id = o.id)"
        ).fetchone()[0]
    finally:
        conn.close()
    return waiting == 0 and undelivered == 0
