"""The chat area: the owner's conversation with their agent, its page and JSON API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import SerializationException
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import File, Template
from litestar.types import ControllerRouterHandler

from nanoclaw_app.channels.webchat.model import ChatMessage
from nanoclaw_app.errors import UserError
from nanoclaw_app.services import chat
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.web.pages import page


@dataclass
class ChatAgent:
    """An agent that answers in the chat."""

    id: str
    name: str


@dataclass
class ChatHistory:
    """A page of the conversation, oldest first; ``agents`` is empty until setup wired an agent to the chat."""

    messages: list[ChatMessage]
    has_more: bool
    agents: list[ChatAgent] = field(default_factory=list)


@dataclass
class CardAnswer:
    """The option value clicked on a card."""

    value: str


async def _message_form(request: Request[Any, Any, Any]) -> tuple[str, list[tuple[str, bytes, str]]]:
    """``text`` and ``files`` from a multipart form, or ``{"text": ...}`` as JSON."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        text = form.get("text", "")
        files = []
        for item in form.getall("files") if "files" in form else []:
            if isinstance(item, UploadFile):
                files.append((item.filename or "file", await item.read(), item.content_type or ""))
        return (text if isinstance(text, str) else ""), files
    try:
        body = await request.json()
    except SerializationException as err:
        raise UserError("send JSON like {\"text\": \"hello\"} or a multipart form with text and files") from err
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str):
        raise UserError("the message needs a \"text\" string")
    return text, []


class ChatController(Controller):
    """``/chat`` and ``/api/chat/*``."""

    @get("/chat", include_in_schema=False)
    async def chat_page(self) -> Template:
        """The conversation (history and live updates are fetched by the page's script)."""
        return page("chat.html", "chat")

    @get("/api/chat/messages", summary="The chat's messages, oldest first")
    async def messages(
        self, services: NamedDependency[AppServices], before: FromQuery[str | None] = None, limit: FromQuery[int] = 50
    ) -> ChatHistory:
        """The newest page, or the page before message ``before``; plus which agents answer here."""
        found = await chat.history(services, before=before, limit=limit)
        agents = [ChatAgent(a.id, a.name) for a in await chat.chat_agents(services)]
        return ChatHistory(messages=found.messages, has_more=found.has_more, agents=agents)

    @post("/api/chat/messages", status_code=201, summary="Send a message to the agent",
          description="JSON `{\"text\": \"...\"}`, or a multipart form with a `text` field and any number of "
                      "`files` parts. The reply arrives on `/api/events` as `chat.message`.")
    async def send(self, services: NamedDependency[AppServices], request: Request[Any, Any, Any]) -> ChatMessage:
        """Stores the message (shown at once) and routes it to the agent."""
        text, files = await _message_form(request)
        return await chat.send_message(services, text, files)

    @post("/api/chat/cards/{question_id:str}", status_code=200, summary="Answer a question or approval card")
    async def answer(
        self, services: NamedDependency[AppServices], question_id: FromPath[str], data: JSONBody[CardAnswer]
    ) -> ChatMessage:
        """Clicks the option as the in-app user; returns the card with the choice marked."""
        return await chat.answer_card(services, question_id, data.value)

    @get("/api/chat/files/{message_id:str}/{name:str}", summary="Download a file of a chat message")
    async def file(
        self, services: NamedDependency[AppServices], message_id: FromPath[str], name: FromPath[str]
    ) -> File:
        """Raster images are shown inline; every other file downloads."""
        found = await chat.file_download(services, message_id, name)
        return File(found.path, filename=found.name, media_type=found.mime_type,
                    content_disposition_type="inline" if found.inline else "attachment")


ROUTES: list[ControllerRouterHandler] = [ChatController]
