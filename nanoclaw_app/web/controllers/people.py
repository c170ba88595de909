"""The people area: everyone NanoClaw has seen, their roles and memberships, and strangers waiting to be let in.

Actions name the person in the body, not the path: platform ids carry characters (``:``, ``@``, ``+``) that are
awkward in a URL segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from nanoclaw_app.services import people
from nanoclaw_app.services.chats import AgentRef, list_agents
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.services.people import PersonView
from nanoclaw_app.web.pages import page


@dataclass
class PeopleList:
    """Everyone, and the agents roles and memberships can name."""

    people: list[PersonView] = field(default_factory=list)
    agents: list[AgentRef] = field(default_factory=list)


@dataclass
class RoleChange:
    """``owner`` (always global) or ``admin`` (global without an agent, else of that agent)."""

    user_id: str
    role: str
    agent_group_id: str | None = None


@dataclass
class MembershipChange:
    """A person and an agent; an unknown ``<channel>:<handle>`` is added when granting membership."""

    user_id: str
    agent_group_id: str


@dataclass
class Rename:
    """The name shown for a person on cards and pages."""

    user_id: str
    display_name: str


class PeopleController(Controller):
    """``/people`` and ``/api/people``."""

    @get("/people", include_in_schema=False)
    async def people_page(self) -> Template:
        """The people page; its script loads everyone and the waiting senders from the API."""
        return page("people.html", "people")

    @get("/api/people", summary="List people with roles and memberships")
    async def list_people(self, services: NamedDependency[AppServices]) -> PeopleList:
        """Owners first, then admins, then everyone else by name."""
        return PeopleList(people=await people.list_people(services), agents=await list_agents(services))

    @post("/api/people/grant", status_code=200, summary="Make someone owner or admin")
    async def grant(self, services: NamedDependency[AppServices], data: JSONBody[RoleChange]) -> PersonView:
        """400 for an owner scoped to one agent or an unknown role; 404 for an unknown person or agent."""
        return await people.grant(services, data.user_id, data.role, data.agent_group_id)

    @post("/api/people/revoke", status_code=200, summary="Take a role away")
    async def revoke(self, services: NamedDependency[AppServices], data: JSONBody[RoleChange]) -> PersonView:
        """400 for the last owner."""
        return await people.revoke(services, data.user_id, data.role, data.agent_group_id)

    @post("/api/people/add-member", status_code=200, summary="Let someone talk to an agent")
    async def add_member(self, services: NamedDependency[AppServices],
                         data: JSONBody[MembershipChange]) -> PersonView:
        """Idempotent; adds a person named by ``<channel>:<handle>`` who has not written yet."""
        return await people.add_member(services, data.user_id, data.agent_group_id)

    @post("/api/people/remove-member", status_code=200, summary="Stop someone talking to an agent")
    async def remove_member(self, services: NamedDependency[AppServices],
                            data: JSONBody[MembershipChange]) -> PersonView:
        """404 when they were not a member."""
        return await people.remove_member(services, data.user_id, data.agent_group_id)

    @post("/api/people/rename", status_code=200, summary="Change the name shown for someone")
    async def rename(self, services: NamedDependency[AppServices], data: JSONBody[Rename]) -> PersonView:
        """400 for an empty or overlong name."""
        return await people.rename(services, data.user_id, data.display_name)


ROUTES: list[ControllerRouterHandler] = [PeopleController]
