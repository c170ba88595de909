"""Managing agents: create, rename, model, memory, skills, mounts, packages, MCP servers, internet, restart, delete.

The page, its JSON API and ``nanoclaw agents`` all call these functions, so they refuse the same things with the same
words. Package and MCP-server checks are the ones the agent-initiated system actions use (``core.system_actions``);
mounts are checked against the user's allowlist when they are saved, not only when a container starts, so a refusal is
seen by the person who asked for the mount. Config changes take effect when the agent's next container starts;
:func:`restart_agent` stops the running ones so the next message starts a fresh one.

Callers import the package (``from nanoclaw_app.services import agents``); the modules split it by what they manage.
"""

from nanoclaw_app.services.agents.crud import (
    MAX_NAME,
    TRASH_DIR,
    AgentDetail,
    AgentSummary,
    ChatLink,
    DeleteResult,
    RestartResult,
    SessionInfo,
    create_agent,
    delete_agent,
    find_agent,
    get_agent,
    list_agents,
    providers,
    restart_agent,
    update_agent,
)
from nanoclaw_app.services.agents.internet import (
    INTERNET_MODES,
    MAX_SITES,
    InternetAccess,
    check_sites,
    get_internet,
    set_internet,
)
from nanoclaw_app.services.agents.mcp import (
    RESERVED_MCP_NAMES,
    McpServer,
    add_mcp_server,
    list_mcp_servers,
    remove_mcp_server,
)
from nanoclaw_app.services.agents.memory import MEMORY_MAX_BYTES, Memory, get_memory, put_memory
from nanoclaw_app.services.agents.mounts import (
    MAX_MOUNTS,
    AllowlistView,
    MountIn,
    MountStatus,
    MountsView,
    RootView,
    add_allowed_root,
    get_allowlist,
    get_mounts,
    remove_allowed_root,
    set_mounts,
)
from nanoclaw_app.services.agents.packages import Packages, get_packages, set_packages
from nanoclaw_app.services.agents.skills import SkillChoice, SkillsView, get_skills, set_skills

__all__ = [
    "INTERNET_MODES",
    "MAX_MOUNTS",
    "MAX_NAME",
    "MAX_SITES",
    "MEMORY_MAX_BYTES",
    "RESERVED_MCP_NAMES",
    "TRASH_DIR",
    "AgentDetail",
    "AgentSummary",
    "AllowlistView",
    "ChatLink",
    "DeleteResult",
    "InternetAccess",
    "McpServer",
    "Memory",
    "MountIn",
    "MountStatus",
    "MountsView",
    "Packages",
    "RestartResult",
    "RootView",
    "SessionInfo",
    "SkillChoice",
    "SkillsView",
    "add_allowed_root",
    "add_mcp_server",
    "check_sites",
    "create_agent",
    "delete_agent",
    "find_agent",
    "get_agent",
    "get_allowlist",
    "get_internet",
    "get_memory",
    "get_mounts",
    "get_packages",
    "get_skills",
    "list_agents",
    "list_mcp_servers",
    "providers",
    "put_memory",
    "remove_allowed_root",
    "remove_mcp_server",
    "restart_agent",
    "set_internet",
    "set_mounts",
    "set_packages",
    "set_skills",
    "update_agent",
]
