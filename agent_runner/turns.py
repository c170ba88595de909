"""The turns of one model query: what was asked, in order, so each answer goes to the rows it answers."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from agent_runner.protocol import InboundRow


@dataclass(eq=False)
class Turn:
    """One prompt given to the model (the first, a pushed follow-up, or our nudge) and the rows it answers."""

    rows: list[InboundRow]
    nudge: bool = False
    raw: bool = False
    """A native slash command: its unwrapped output is the command's answer and goes to the command's chat."""
    context: list[InboundRow] = field(default_factory=list)
    """For a nudge: the rows of the turn it repeats (tools stamp ``in_reply_to`` from them)."""
    sent_before: int = 0
    """How many tool messages had been written when this turn became current."""


@dataclass(eq=False)
class QueryState:
    """One model query's turns in order and how it ended."""

    turns: deque[Turn]
    last_activity: float
    retry_fresh: bool = False
    """The continuation was invalid: run the unanswered turns again in a fresh query."""
    failed: bool = False
    ended: bool = False
    """``end()`` was called: nothing more may be pushed (not even a nudge)."""
