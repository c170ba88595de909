"""The agents area: the list and detail pages, and the JSON API they use (also documented at ``/schema``).

Thin on purpose: every handler calls one function of :mod:`nanoclaw_app.services.agents`, which the CLI calls too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from litestar import Controller, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Template
from litestar.status_codes import HTTP_404_NOT_FOUND
from litestar.types import ControllerRouterHandler

from nanoclaw_app.errors import NotFound
from nanoclaw_app.services import agents as svc
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.web.pages import page


@dataclass
class CreateAgent:
    """A new agent; an empty model means the provider's default."""

    name: str
    provider: str = "claude"
    model: str | None = None


@dataclass
class UpdateAgent:
    """Only the fields given change; ``""`` clears the model or the assistant name."""

    name: str | None = None
    provider: str | None = None
    model: str | None = None
    assistant_name: str | None = None


@dataclass
class MemoryIn:
    """The new memory text; ``base_version`` from the last read refuses to overwrite the agent's newer edits."""

    text: str
    base_version: str | None = None


@dataclass
class SkillsIn:
    """The shipped skills to switch off; every other one is on (a skill shipped later starts on)."""

    off: list[str] = field(default_factory=list)


@dataclass
class MountsIn:
    """The agent's complete list of extra mounts."""

    mounts: list[svc.MountIn] = field(default_factory=list)


@dataclass
class RootIn:
    """A folder below which agents may be given mounts."""

    path: str
    allow_read_write: bool = False
    description: str = ""


@dataclass
class PackagesIn:
    """Package lists; a list left out stays as it is."""

    apt: list[str] | None = None
    pip: list[str] | None = None


@dataclass
class InternetIn:
    """``open``, or ``sites`` with the only sites the agent may reach (each covers its subdomains)."""

    mode: str
    sites: list[str] = field(default_factory=list)


@dataclass
class McpServerIn:
    """A stdio MCP server: the command the container runs, its arguments and environment."""

    name: str
    command: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


class AgentPages(Controller):
    """``/agents`` and ``/agents/{agent_id}``."""

    @get("/agents", include_in_schema=False)
    async def agents_page(self) -> Template:
        """The list of agents and the form for a new one."""
        return page("agents.html", "agents", providers=svc.providers())

    @get("/agents/{agent_id:str}", include_in_schema=False)
    async def agent_page(self, services: NamedDependency[AppServices], agent_id: FromPath[str]) -> Template:
        """One agent's tabs; the script loads each tab's data from the API."""
        try:
            agent = await svc.get_agent(services, agent_id)
        except NotFound:
            return page("agent.html", "agents", agent=None, status_code=HTTP_404_NOT_FOUND)
        return page("agent.html", "agents", agent=agent, providers=svc.providers())


class AgentsApi(Controller):
    """``/api/agents/...``."""

    path = "/api/agents"

    @get("/", summary="List agents")
    async def list_agents(self, services: NamedDependency[AppServices]) -> list[svc.AgentSummary]:
        """Every agent with its provider, model, active sessions, running containers and wired chats."""
        return await svc.list_agents(services)

    @post("/", summary="Create an agent")
    async def create_agent(
        self, services: NamedDependency[AppServices], data: JSONBody[CreateAgent]
    ) -> svc.AgentDetail:
        """A new agent with its workspace and memory file; wire it to a chat on the Chats page."""
        return await svc.create_agent(services, data.name, data.provider, data.model)

    @get("/providers", summary="Providers an agent can use")
    async def providers(self) -> list[str]:
        """The runner's provider names."""
        return svc.providers()

    @get("/allowlist", summary="The mount allowlist")
    async def allowlist(self, services: NamedDependency[AppServices]) -> svc.AllowlistView:
        """Folders below which agents may be given mounts, and names that are always refused."""
        return await svc.get_allowlist(services)

    @post("/allowlist/roots", status_code=200, summary="Allow mounts below a folder")
    async def add_root(self, services: NamedDependency[AppServices], data: JSONBody[RootIn]) -> svc.AllowlistView:
        """Adds (or replaces) an allowed root; refused for a missing folder, a secret or NanoClaw's own data."""
        return await svc.add_allowed_root(services, data.path, read_write=data.allow_read_write,
                                          description=data.description)

    @delete("/allowlist/roots", status_code=200, summary="Stop allowing mounts below a folder")
    async def remove_root(self, services: NamedDependency[AppServices], path: FromQuery[str]) -> svc.AllowlistView:
        """Removes an allowed root; mounts below it are refused from the agent's next start."""
        return await svc.remove_allowed_root(services, path)

    @get("/{agent_id:str}", summary="One agent")
    async def get_agent(self, services: NamedDependency[AppServices], agent_id: FromPath[str]) -> svc.AgentDetail:
        """The agent with its config, chats, sessions and workspace folder."""
        return await svc.get_agent(services, agent_id)

    @patch("/{agent_id:str}", summary="Rename an agent or change its provider or model")
    async def update_agent(
        self, services: NamedDependency[AppServices], agent_id: FromPath[str], data: JSONBody[UpdateAgent]
    ) -> svc.AgentDetail:
        """Changes apply at the agent's next container start (restart it to apply them now)."""
        return await svc.update_agent(services, agent_id, name=data.name, provider=data.provider, model=data.model,
                                      assistant_name=data.assistant_name)

    @delete("/{agent_id:str}", status_code=200, summary="Delete an agent")
    async def delete_agent(
        self, services: NamedDependency[AppServices], agent_id: FromPath[str], force: FromQuery[bool] = False
    ) -> svc.DeleteResult:
        """Refused while it answers in a chat unless ``force``; its files move to ``deleted-agents``."""
        return await svc.delete_agent(services, agent_id, force=force)

    @get("/{agent_id:str}/memory", summary="The agent's memory file")
    async def get_memory(self, services: NamedDependency[AppServices], agent_id: FromPath[str]) -> svc.Memory:
        """Its text, size and version (send the version back when saving)."""
        return await svc.get_memory(services, agent_id)

    @put("/{agent_id:str}/memory", summary="Replace the agent's memory file")
    async def put_memory(
        self, services: NamedDependency[AppServices], agent_id: FromPath[str], data: JSONBody[MemoryIn]
    ) -> svc.Memory:
        """Written atomically; refused when too large or when the agent changed it since ``base_version``."""
        return await svc.put_memory(services, agent_id, data.text, base_version=data.base_version)

    @get("/{agent_id:str}/mounts", summary="The agent's extra mounts")
    async def get_mounts(self, services: NamedDependency[AppServices], agent_id: FromPath[str]) -> svc.MountsView:
        """Each mount with what the allowlist says about it now."""
        return await svc.get_mounts(services, agent_id)

    @put("/{agent_id:str}/mounts", summary="Replace the agent's extra mounts")
    async def set_mounts(
        self, services: NamedDependency[AppServices], agent_id: FromPath[str], data: JSONBody[MountsIn]
    ) -> svc.MountsView:
        """Nothing is saved when any mount fails the allowlist; the error says which and why."""
        return await svc.set_mounts(services, agent_id, data.mounts)

    @get("/{agent_id:str}/packages", summary="The agent's extra packages")
    async def get_packages(self, services: NamedDependency[AppServices], agent_id: FromPath[str]) -> svc.Packages:
        """The extra apt and pip packages built into its image."""
        return await svc.get_packages(services, agent_id)

    @put("/{agent_id:str}/packages", summary="Set the agent's extra packages")
    async def set_packages(
        self, services: NamedDependency[AppServices], agent_id: FromPath[str], data: JSONBody[PackagesIn]
    ) -> svc.Packages:
        """A change builds a new image at the agent's next container start."""
        return await svc.set_packages(services, agent_id, apt=data.apt, pip=data.pip)

    @get("/{agent_id:str}/internet", summary="The agent's internet access")
    async def get_internet(
        self, services: NamedDependency[AppServices], agent_id: FromPath[str]
    ) -> svc.InternetAccess:
        """Open, or only the listed sites; the home network is never reachable either way."""
        return await svc.get_internet(services, agent_id)

    @put("/{agent_id:str}/internet", summary="Set the agent's internet access")
    async def set_internet(
        self, services: NamedDependency[AppServices], agent_id: FromPath[str], data: JSONBody[InternetIn]
    ) -> svc.InternetAccess:
        """Applies to the agent's next connection; a bad site refuses the whole change, naming the line."""
        return await svc.set_internet(services, agent_id, data.mode, data.sites)

    @get("/{agent_id:str}/skills", summary="The agent's shipped skills")
    async def get_skills(self, services: NamedDependency[AppServices], agent_id: FromPath[str]) -> svc.SkillsView:
        """Each shipped skill, on or off, and the folder for the owner's own skills."""
        return await svc.get_skills(services, agent_id)

    @put("/{agent_id:str}/skills", summary="Choose the agent's shipped skills")
    async def set_skills(
        self, services: NamedDependency[AppServices], agent_id: FromPath[str], data: JSONBody[SkillsIn]
    ) -> svc.SkillsView:
        """Exactly the named skills are off; an unknown name refuses the whole change."""
        return await svc.set_skills(services, agent_id, data.off)

    @get("/{agent_id:str}/mcp-servers", summary="The agent's MCP servers")
    async def list_mcp(self, services: NamedDependency[AppServices], agent_id: FromPath[str]) -> list[svc.McpServer]:
        """Environment values are masked."""
        return await svc.list_mcp_servers(services, agent_id)

    @post("/{agent_id:str}/mcp-servers", status_code=200, summary="Add an MCP server")
    async def add_mcp(
        self, services: NamedDependency[AppServices], agent_id: FromPath[str], data: JSONBody[McpServerIn]
    ) -> list[svc.McpServer]:
        """Checked as the agent's own requests are; a taken name is refused."""
        return await svc.add_mcp_server(services, agent_id, data.name, data.command, data.args, data.env)

    @delete("/{agent_id:str}/mcp-servers/{name:str}", status_code=200, summary="Remove an MCP server")
    async def remove_mcp(
        self, services: NamedDependency[AppServices], agent_id: FromPath[str], name: FromPath[str]
    ) -> list[svc.McpServer]:
        """The server is gone from the agent's next container start."""
        return await svc.remove_mcp_server(services, agent_id, name)

    @post("/{agent_id:str}/restart", status_code=200, summary="Restart the agent's containers")
    async def restart(self, services: NamedDependency[AppServices], agent_id: FromPath[str]) -> svc.RestartResult:
        """Stops each running container; the next message starts a fresh one with the current settings."""
        return await svc.restart_agent(services, agent_id)


ROUTES: list[ControllerRouterHandler] = [AgentPages, AgentsApi]
"""One controller module per area; :func:`nanoclaw_app.web.app.routes` registers them all."""
