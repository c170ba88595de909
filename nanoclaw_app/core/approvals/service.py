"""The approval service: the router's hooks for held messages, card clicks, and agent approval requests."""

from __future__ import annotations

import logging
from typing import Any

from nanoclaw_app.core import cards
from nanoclaw_app.core.approvals import channel, expiry, requests, sender
from nanoclaw_app.core.approvals.dispatch import ClickHandler, dispatch
from nanoclaw_app.core.approvals.requests import ApprovalHandler
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.db.rows import MessagingGroup, Session, Wiring

log = logging.getLogger(__name__)


class ApprovalService:
    """Owns the approval handlers registered by other modules; stateless otherwise (all state is in the DB)."""

    def __init__(self, ctx: CoreContext) -> None:
        self.ctx = ctx
        self._handlers: dict[str, ApprovalHandler] = {}
        self._live: set[str] = set()
        """Actions whose requests wait in this process (a held web request): a restart expires them at once."""
        # Order matters: agent approvals, then question answers, then sender, then channel approvals.
        self._click_handlers: tuple[ClickHandler, ...] = (
            self._on_approval_click,
            self._on_question_click,
            self._on_sender_click,
            self._on_channel_click,
        )

    # ------------------------------------------------------------------------------------------ router hooks

    async def intercept(self, msg: InboundMessage) -> bool:
        """Consume messages that answer an approval prompt (a new agent's name); True means "do not route"."""
        return await channel.intercept_agent_name(self.ctx, msg)

    async def request_sender_approval(
        self, msg: InboundMessage, chat: MessagingGroup, wiring: Wiring, user_id: str
    ) -> None:
        """Ask an admin whether an unknown sender may talk to the wired agent (the router records the drop)."""
        await sender.request_sender_approval(self.ctx, msg, chat, wiring, user_id)

    async def request_channel_registration(self, msg: InboundMessage, chat: MessagingGroup) -> None:
        """Ask an owner which agent should answer in a chat that has no wiring."""
        await channel.request_channel_registration(self.ctx, msg, chat)

    # ------------------------------------------------------------------------------------------ clicks

    async def on_action(self, question_id: str, value: str, user_id: str) -> bool:
        """Route a card click to its kind's handler; False when no pending card has this id.

        Once claimed, copies of the card on text-only channels stop taking numbered answers.
        """
        claimed = await dispatch(self.ctx, self._click_handlers, question_id, value, user_id)
        if claimed:
            await cards.close_question(self.ctx.db, question_id, value)
        return claimed

    async def _on_approval_click(self, question_id: str, value: str, user_id: str) -> bool:
        return await requests.on_approval_click(self.ctx, self._handlers, question_id, value, user_id)

    async def _on_question_click(self, question_id: str, value: str, user_id: str) -> bool:
        return await requests.on_question_click(self.ctx, question_id, value, user_id)

    async def _on_sender_click(self, question_id: str, value: str, user_id: str) -> bool:
        return await sender.on_sender_click(self.ctx, question_id, value, user_id)

    async def _on_channel_click(self, question_id: str, value: str, user_id: str) -> bool:
        return await channel.on_channel_click(self.ctx, question_id, value, user_id)

    # ------------------------------------------------------------------------------------------ agent requests

    async def request_approval(
        self, *, session: Session, action: str, payload: dict[str, Any], title: str, question: str,
        ttl_seconds: float | None = None,
    ) -> str | None:
        """Ask for an admin's approval of an agent's action; None (and the agent told) when nobody can approve."""
        if action not in self._handlers:
            log.warning("approval requested for %s, which has no registered handler yet", action)
        return await requests.request_approval(self.ctx, session=session, action=action, payload=payload,
                                               title=title, question=question, ttl_seconds=ttl_seconds)

    def register_handler(self, action: str, handler: ApprovalHandler, *, live: bool = False) -> None:
        """Register what runs when ``action`` is approved (its returned text is told to the agent).

        ``live``: its requests are waited for by this process, so the ones pending at a host start can never be
        applied and are expired at once (card edited, agent told).
        """
        if action in self._handlers:
            raise ValueError(f"an approval handler for {action!r} is already registered")
        self._handlers[action] = handler
        if live:
            self._live.add(action)

    async def status(self, approval_id: str) -> tuple[str, str | None] | None:
        """An approval's status (``pending``, ``approved``, ``rejected``, ``expired``) and who decided it."""
        row = await approvals_db.get_approval(self.ctx.db, approval_id)
        return None if row is None else (row.status, row.decided_by)

    async def expire_now(self, approval_id: str) -> bool:
        """Expire one pending request before the sweep would (its waiter gave up); False when decided meanwhile."""
        row = await approvals_db.get_approval(self.ctx.db, approval_id)
        if row is None or row.status != "pending":
            return False
        return await requests.expire_approval(self.ctx, row, expiry.NO_RESPONSE)

    # ------------------------------------------------------------------------------------------ expiry

    async def expire_due(self) -> int:
        """Expire unanswered cards (approvals count as rejected); for the sweep."""
        return await expiry.expire_due(self.ctx)

    async def sweep_stale_on_start(self) -> int:
        """Expire what ran out while the host was down, and every pending live request; call once at start."""
        return await expiry.sweep_stale_on_start(self.ctx, live_actions=frozenset(self._live))
