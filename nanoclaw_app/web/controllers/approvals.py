"""The approvals area: the queue of requests, decided from the app as a click on the card would decide them."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from nanoclaw_app.services import approvals
from nanoclaw_app.services.approvals import ApprovalQueue, Decision
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.web.pages import page


@dataclass
class Count:
    """How many requests wait."""

    count: int


@dataclass
class Approve:
    """For a chat waiting for an agent: which agent should answer there (optional when there is only one)."""

    agent_group_id: str | None = None


class ApprovalsController(Controller):
    """``/approvals`` and ``/api/approvals``."""

    @get("/approvals", include_in_schema=False)
    async def approvals_page(self) -> Template:
        """The queue page; it reloads the list whenever an approval event arrives."""
        return page("approvals.html", "approvals", event_kinds=list(approvals.EVENT_KINDS))

    @get("/api/approvals", summary="List the requests waiting for a decision")
    async def queue(
        self, services: NamedDependency[AppServices], kind: FromQuery[str | None] = None
    ) -> ApprovalQueue:
        """Oldest first; ``kind`` = ``agent``, ``sender`` or ``channel`` keeps one sort (``count`` is all of them)."""
        return await approvals.pending(services, kind)

    @get("/api/approvals/count", summary="How many requests wait (the menu badge)")
    async def count(self, services: NamedDependency[AppServices]) -> Count:
        """Cheap enough to call on every approval event."""
        return Count(count=await approvals.count(services))

    @post("/api/approvals/{approval_id:str}/approve", status_code=200, summary="Approve a request")
    async def approve(
        self, services: NamedDependency[AppServices], approval_id: FromPath[str], data: JSONBody[Approve]
    ) -> Decision:
        """As the owner, exactly like pressing Approve/Allow/Connect on the card; 404 when already decided."""
        return await approvals.decide(services, approval_id, approve=True, agent_ref=data.agent_group_id)

    @post("/api/approvals/{approval_id:str}/reject", status_code=200, summary="Reject a request")
    async def reject(self, services: NamedDependency[AppServices], approval_id: FromPath[str]) -> Decision:
        """As the owner, exactly like pressing Reject/Deny on the card; 404 when already decided."""
        return await approvals.decide(services, approval_id, approve=False)


ROUTES: list[ControllerRouterHandler] = [ApprovalsController]
