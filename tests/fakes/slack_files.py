"""The fake Slack's files: the upload flow (``files.getUploadURLExternal`` → upload → ``files.completeUploadExternal``),
``files.info``, and ``url_private`` downloads that need the bot token (without it Slack answers its sign-in page).

A mixin of ``FakeSlack`` (it uses the workspace's files, calls and helpers), kept apart to keep each file about one
thing.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakes.slack_workspace import TEAM_ID, Conversation, SlackError, StoredFile


class FileRoutes:
    """Upload, download and the ``files.*`` methods."""

    files: dict[str, StoredFile]
    calls: list[tuple[str, dict[str, Any]]]
    bot_token: str
    _revoked: bool
    _ids: itertools.count[int]
    _notify: Callable[[], None]
    _writable: Callable[[str], Conversation]
    _bot_message: Callable[..., dict[str, Any]]

    @property
    def base_url(self) -> str:
        raise NotImplementedError  # the server's

    async def _upload(self, request: web.Request) -> web.Response:
        stored = next((f for f in self.files.values() if f.secret and f.secret == request.match_info["secret"]),
                      None)
        if stored is None:
            return web.Response(status=404, text="not found", content_type="text/plain")
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = form.get("file") or form.get("filename")
            data = part.file.read() if isinstance(part, web.FileField) else str(part or "").encode()
        else:
            data = await request.read()
        stored.data = data
        self.calls.append(("upload", {"file_id": stored.id, "size": len(data)}))
        self._notify()
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    async def _download(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {self.bot_token}" or self._revoked:
            raise web.HTTPFound(f"/signin?redir={request.path}")
        file_id = request.match_info["key"].removeprefix(f"{TEAM_ID}-")
        stored = self.files.get(file_id)
        if stored is None or stored.data is None:
            return web.Response(status=404, text="file not found", content_type="text/plain")
        self.calls.append(("download", {"file_id": file_id}))
        self._notify()
        return web.Response(body=stored.data, content_type=stored.mimetype)

    async def _signin(self, request: web.Request) -> web.Response:
        return web.Response(text="<!DOCTYPE html><html><body>Sign in to Nano Test Team</body></html>",
                            content_type="text/html")

    def _m_files_getUploadURLExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        name = str(params.get("filename") or "")
        try:
            length = int(params.get("length") or 0)
        except ValueError:
            length = 0
        if not name or length <= 0:
            raise SlackError("invalid_arguments")
        stored = StoredFile(f"F0FAKE{next(self._ids):05d}", name, None, length=length, secret=secrets.token_hex(12))
        self.files[stored.id] = stored
        return {"upload_url": f"{self.base_url}/upload/v1/{stored.secret}", "file_id": stored.id}

    def _m_files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        items = params.get("files")
        if not isinstance(items, list) or not items:
            raise SlackError("invalid_arguments")
        stored: list[StoredFile] = []
        for item in items:
            found = self.files.get(str(item.get("id", ""))) if isinstance(item, dict) else None
            if found is None or found.data is None:
                raise SlackError("file_not_found")
            found.title = str(item.get("title") or found.name)
            stored.append(found)
        targets = [c for c in [params.get("channel_id"), *str(params.get("channels") or "").split(",")] if c]
        for target in targets:
            conversation = self._writable(target)
            message = self._bot_message(conversation.id, str(params.get("initial_comment") or ""),
                                        thread_ts=params.get("thread_ts") or None,
                                        files=[f.to_dict(self.base_url) for f in stored])
            for found in stored:
                found.shares.append((conversation.id, message["ts"]))
        return {"files": [f.to_dict(self.base_url) for f in stored]}

    def _m_files_info(self, params: dict[str, Any]) -> dict[str, Any]:
        found = self.files.get(str(params.get("file", "")))
        if found is None or found.data is None:
            raise SlackError("file_not_found")
        return {"file": found.to_dict(self.base_url)}
