"""The chats area: every chat NanoClaw knows, who may write there, and which agents answer how."""

from __future__ import annotations

from dataclasses import dataclass, field

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from nanoclaw_app.db.messaging import ENGAGE_MODES, IGNORED_POLICIES, SENDER_POLICIES, SENDER_SCOPES, SESSION_MODES
from nanoclaw_app.services import chats
from nanoclaw_app.services.chats import AgentRef, ChatView, WiringChanges
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.web.pages import page


@dataclass
class ChatList:
    """Every chat, and the agents that can be wired to one."""

    chats: list[ChatView] = field(default_factory=list)
    agents: list[AgentRef] = field(default_factory=list)


@dataclass
class PolicyChange:
    """What happens when someone not yet allowed writes: ``strict``, ``request_approval`` or ``public``."""

    unknown_sender_policy: str


@dataclass
class NewWiring:
    """Wire an agent; options left out get the conservative defaults (a group answers on mention)."""

    agent_group_id: str
    engage_mode: str | None = None
    engage_pattern: str | None = None
    sender_scope: str | None = None
    ignored_message_policy: str | None = None
    session_mode: str | None = None
    priority: int | None = None


class ChatsController(Controller):
    """``/chats`` and ``/api/chats``."""

    @get("/chats", include_in_schema=False)
    async def chats_page(self) -> Template:
        """The chats page; its script loads the list from the API."""
        return page("chats.html", "chats", engage_modes=ENGAGE_MODES, sender_scopes=SENDER_SCOPES,
                    ignored_policies=IGNORED_POLICIES, session_modes=SESSION_MODES, policies=SENDER_POLICIES)

    @get("/api/chats", summary="List chats with their wired agents")
    async def list_chats(self, services: NamedDependency[AppServices]) -> ChatList:
        """Every chat, oldest first, with its wirings (highest priority first)."""
        return ChatList(chats=await chats.list_chats(services), agents=await chats.list_agents(services))

    @get("/api/chats/{chat_id:str}", summary="One chat with its wired agents")
    async def get_chat(self, services: NamedDependency[AppServices], chat_id: FromPath[str]) -> ChatView:
        """404 when the chat does not exist."""
        return await chats.get_chat(services, chat_id)

    @patch("/api/chats/{chat_id:str}", summary="Change who may write in a chat")
    async def set_policy(
        self, services: NamedDependency[AppServices], chat_id: FromPath[str], data: JSONBody[PolicyChange]
    ) -> ChatView:
        """Set the unknown-sender policy."""
        return await chats.set_policy(services, chat_id, data.unknown_sender_policy)

    @post("/api/chats/{chat_id:str}/wirings", status_code=201, summary="Let an agent answer in a chat")
    async def wire(
        self, services: NamedDependency[AppServices], chat_id: FromPath[str], data: JSONBody[NewWiring]
    ) -> ChatView:
        """400 when the agent already answers there or an option is invalid."""
        changes = WiringChanges(
            engage_mode=data.engage_mode, engage_pattern=data.engage_pattern, sender_scope=data.sender_scope,
            ignored_message_policy=data.ignored_message_policy, session_mode=data.session_mode,
            priority=data.priority,
        )
        return await chats.wire(services, chat_id, data.agent_group_id, changes)

    @patch("/api/chats/{chat_id:str}/wirings/{wiring_id:str}", summary="Change how an agent answers in a chat")
    async def update_wiring(
        self,
        services: NamedDependency[AppServices],
        chat_id: FromPath[str],
        wiring_id: FromPath[str],
        data: JSONBody[WiringChanges],
    ) -> ChatView:
        """Only the fields given change; an invalid pattern or value changes nothing (400)."""
        await chats.wiring_of_chat(services, chat_id, wiring_id)
        return await chats.update_wiring(services, wiring_id, data)

    @delete("/api/chats/{chat_id:str}/wirings/{wiring_id:str}", status_code=200,
            summary="Stop an agent answering in a chat")
    async def unwire(
        self, services: NamedDependency[AppServices], chat_id: FromPath[str], wiring_id: FromPath[str]
    ) -> ChatView:
        """The agent keeps the chat as a destination it may write to."""
        await chats.wiring_of_chat(services, chat_id, wiring_id)
        return await chats.unwire(services, wiring_id)


ROUTES: list[ControllerRouterHandler] = [ChatsController]
