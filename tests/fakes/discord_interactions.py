"""The fake Discord's interaction routes: a button click's callback, follow-ups and the webhook edits of its answer.

A mixin of ``FakeDiscord`` (it uses the server's messages, interactions and helpers), kept apart to keep each file
about one thing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakes.discord_model import DiscordRefusal
from tests.fakes.discord_payloads import checked_content


class InteractionRoutes:
    """``/interactions/{id}/{token}/callback`` and ``/webhooks/{application}/{token}/...``."""

    bot: Any
    interactions: dict[int, dict[str, Any]]
    interaction_responses: dict[int, list[dict[str, Any]]]
    messages: dict[int, dict[str, Any]]
    _post: Callable[..., dict[str, Any]]
    _apply_edit: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
    _message: Callable[..., dict[str, Any]]

    def _interaction(self, interaction_id: int | str, token: str) -> dict[str, Any]:
        found = self.interactions.get(int(interaction_id))
        if found is None or found["token"] != token:
            raise DiscordRefusal(404, 10062, "Unknown interaction")
        return found

    def _by_token(self, application_id: str, token: str) -> dict[str, Any]:
        found = next((i for i in self.interactions.values() if i["token"] == token), None)
        if found is None or application_id != str(self.bot.id):
            raise DiscordRefusal(404, 10015, "Unknown Webhook")
        return found

    async def _r_callback(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        interaction = self._interaction(params["interaction_id"], params["token"])
        answers = self.interaction_responses.setdefault(int(interaction["id"]), [])
        if answers:
            raise DiscordRefusal(400, 40060, "Interaction has already been acknowledged.")
        payload = body or {}
        kind = int(payload.get("type", 0))
        data = payload.get("data") or {}
        answers.append({k: v for k, v in payload.items() if k != "_files"})
        channel_id = int(interaction["channel_id"])
        message: dict[str, Any] | None = None
        if kind == 4:  # a new message answering the click
            fields, uploads = checked_content(data | {"_files": payload.get("_files")})
            message = self._post(channel_id, self.bot, fields, uploads=uploads, flags=int(data.get("flags") or 0))
        elif kind == 5:  # "thinking…" until a follow-up edits it
            message = self._post(channel_id, self.bot, {"content": ""}, flags=128)
        elif kind == 7:  # the clicked message itself is changed
            message = self._apply_edit(self.messages[int(interaction["message"]["id"])],
                                       data | {"_files": payload.get("_files")})
        if message is not None and kind in (4, 5):
            interaction["response_message_id"] = message["id"]
        result: dict[str, Any] = {"interaction": {
            "id": interaction["id"], "type": 3, "response_message_loading": kind == 5,
            "response_message_ephemeral": bool(int(data.get("flags") or 0) & 64)}}
        if message is not None:
            result["interaction"]["response_message_id"] = message["id"]
            result["resource"] = {"type": kind, "message": message}
        return result if request.query.get("with_response") in ("1", "true", "True") else None

    async def _r_followup(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        interaction = self._by_token(params["application_id"], params["token"])
        payload = body or {}
        self.interaction_responses.setdefault(int(interaction["id"]), []).append(
            {"followup": {k: v for k, v in payload.items() if k != "_files"}})
        channel_id = int(interaction["channel_id"])
        fields, uploads = checked_content(payload)
        return self._post(channel_id, self.bot, fields, uploads=uploads, flags=int(payload.get("flags") or 0))

    def _webhook_target(self, params: dict[str, str]) -> dict[str, Any]:
        interaction = self._by_token(params["application_id"], params["token"])
        message_id = params["message_id"]
        if message_id == "@original":
            message_id = interaction.get("response_message_id") or interaction["message"]["id"]
        return self._message(int(message_id))

    async def _r_webhook_message(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        return self._webhook_target(params)

    async def _r_webhook_edit(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        message = self._webhook_target(params)
        interaction = self._by_token(params["application_id"], params["token"])
        payload = body or {}
        self.interaction_responses.setdefault(int(interaction["id"]), []).append(
            {"edit": {k: v for k, v in payload.items() if k != "_files"}, "message_id": message["id"]})
        message["flags"] = int(message.get("flags") or 0) & ~128
        return self._apply_edit(message, payload)

    async def _r_webhook_delete(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        message = self._webhook_target(params)
        del self.messages[int(message["id"])]
        return None
