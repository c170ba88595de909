"""The activity area: deliveries, dropped messages, container logs, usage, internet (thin: ``services/activity/``)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from nanoclaw_app.services import activity
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.web.pages import page

_StateQuery = Annotated[str | None, QueryParameter(name="state")]
"""``?state=``: ``state`` itself is a name Litestar reserves for the app state."""


class ActivityController(Controller):
    """``/activity`` and ``/api/activity/*``."""

    @get("/activity", include_in_schema=False)
    async def activity_page(self, services: NamedDependency[AppServices]) -> Template:
        """The page with its tabs; each tab loads from the API when opened."""
        return page("activity.html", "activity", timezone=services.settings.timezone)

    @get("/api/activity/deliveries", summary="Recent deliveries and their state")
    async def deliveries(
        self, services: NamedDependency[AppServices], only_state: _StateQuery = None, limit: FromQuery[int] = 100,
    ) -> activity.DeliveryList:
        """Newest first; ``state`` is sending, retry, delivered or failed."""
        return await activity.list_deliveries(services, state=only_state or None, limit=limit)

    @get("/api/activity/dropped", summary="Messages that reached no agent, and why")
    async def dropped(
        self, services: NamedDependency[AppServices], limit: FromQuery[int] = 200
    ) -> activity.DroppedList:
        """One row per chat, sender, reason and agent, with a count; totals per reason."""
        return await activity.list_dropped(services, limit=limit)

    @get("/api/activity/internet", summary="What the agents did on the internet")
    async def internet(
        self, services: NamedDependency[AppServices], agent: FromQuery[str | None] = None,
        kind: FromQuery[str | None] = None, before: FromQuery[int | None] = None, limit: FromQuery[int] = 200,
    ) -> activity.EgressList:
        """Credentialed requests and connections, newest first; ``before`` (from ``older``) pages back."""
        return await activity.list_egress(services, agent_group_id=agent or None, kind=kind or None, limit=limit,
                                          before=before)

    @get("/api/activity/sessions", summary="Sessions whose container logs can be read")
    async def sessions(self, services: NamedDependency[AppServices]) -> list[activity.SessionView]:
        """Active sessions, most recently active first."""
        return await activity.list_sessions(services)

    @get("/api/activity/logs/{session_id:str}", summary="The end of a session's container log")
    async def log_tail(
        self, services: NamedDependency[AppServices], session_id: FromPath[str],
        kb: FromQuery[int] = activity.DEFAULT_TAIL_KB,
    ) -> activity.LogTail:
        """The last ``kb`` KiB (whole lines), with credentials masked."""
        return await activity.log_tail(services, session_id, kb=kb)

    @get("/api/activity/usage", summary="Model usage and cost per agent and day")
    async def usage(
        self, services: NamedDependency[AppServices], days: FromQuery[int] = activity.USAGE_DAYS
    ) -> activity.UsageReport:
        """Days on the user's clock; ``today`` compares today's spend with the daily cap."""
        return await activity.usage_report(services, days=days)


ROUTES: list[ControllerRouterHandler] = [ActivityController]
