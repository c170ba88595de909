"""The people area: everyone NanoClaw has seen, their roles and memberships, and strangers waiting to be let in.

Actions name the person in the body, not the path: platform ids carry characters (``:``, ``@``, ``+``) that are
awkward in a URL segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from nanoclaw_app.services import people, person_memory
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
class PersonMemoryIn:
    """A person's new memory text with one agent; ``base_version`` (from the last read) keeps the agent's edits."""

    agent_group_id: str
    user_id: str
    text: str
    base_version: str | None = None


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


    @get("/api/people/memories", summary="Whose private memory an agent keeps")
    async def memories(self, services: NamedDependency[AppServices],
                       agent: FromQuery[str]) -> person_memory.AgentPeople:
        """Everyone who may talk to the agent, and anyone it keeps a memory file for; 404 for an unknown agent."""
        return await person_memory.list_for_agent(services, agent)

    @get("/api/people/memory", summary="One person's private memory with an agent")
    async def get_memory(self, services: NamedDependency[AppServices], agent: FromQuery[str],
                         user: FromQuery[str]) -> person_memory.PersonMemory:
        """400 with a sentence when the agent left something other than a plain file there (a link, a pipe)."""
        return await person_memory.get(services, agent, user)

    @post("/api/people/memory", status_code=200, summary="Replace one person's private memory with an agent")
    async def put_memory(self, services: NamedDependency[AppServices],
                         data: JSONBody[PersonMemoryIn]) -> person_memory.PersonMemory:
        """400 when it changed since ``base_version``, is too long, or cannot be written safely."""
        return await person_memory.put(services, data.agent_group_id, data.user_id, data.text,
                                       base_version=data.base_version)

    @post("/api/people/memory/start-afresh", status_code=200, summary="Remove what stands at a person's memory file")
    async def start_afresh(self, services: NamedDependency[AppServices],
                           data: JSONBody[MembershipChange]) -> person_memory.PersonMemory:
        """The way out when the file is a link, a pipe or too large: it is removed (never followed) and left empty."""
        return await person_memory.start_afresh(services, data.agent_group_id, data.user_id)


ROUTES: list[ControllerRouterHandler] = [PeopleController]
