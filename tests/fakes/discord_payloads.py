"""How the fake Discord reads a request: its body (JSON or multipart with ``files[n]``) and a message's content, checked
the way Discord checks it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aiohttp import BodyPartReader, web

from tests.fakes.discord_model import MAX_CONTENT, MAX_CUSTOM_ID, form_error


async def read_body(request: web.Request) -> Any:
    """A request's body: JSON, a multipart form (files as dicts with their bytes), text, or None."""
    if not request.can_read_body:
        return None
    if request.content_type == "application/json":
        return await request.json()
    if request.content_type.startswith("multipart/"):
        form: dict[str, Any] = {}
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            data = await part.read()
            if part.filename:
                form[part.name] = {"filename": part.filename, "data": bytes(data),
                                   "content_type": part.headers.get("Content-Type", "application/octet-stream")}
            else:
                form[part.name] = data.decode()
        return form
    return (await request.read()).decode() or None


def with_files(body: Any) -> Any:
    """A multipart body's ``payload_json`` with its ``files[n]`` listed under ``"_files"``."""
    if isinstance(body, dict) and "payload_json" in body:
        payload = json.loads(body["payload_json"])
        payload["_files"] = {k: v for k, v in body.items() if k.startswith("files[")}
        return payload
    return body


def checked_content(payload: dict[str, Any], *,
             existing: Sequence[dict[str, Any]] = ()) -> tuple[dict[str, Any], list[tuple[str, bytes, str]]]:
    """Check message content the way Discord does; returns the fields to store and the uploads."""
    content = payload.get("content")
    if content is not None and len(str(content)) > MAX_CONTENT:
        raise form_error("content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length.")
    for row in payload.get("components") or []:
        for item in row.get("components") or []:
            if len(str(item.get("custom_id", ""))) > MAX_CUSTOM_ID:
                raise form_error("components", "BASE_TYPE_MAX_LENGTH",
                                  f"custom_id must be {MAX_CUSTOM_ID} or fewer in length.")
    files = payload.get("_files") or {}
    uploads: list[tuple[str, bytes, str]] = []
    kept: list[dict[str, Any]] = []
    for entry in payload.get("attachments") or []:
        part = files.get(f"files[{entry['id']}]")
        if part is not None:
            uploads.append((entry.get("filename") or part["filename"], part["data"], part["content_type"]))
        else:
            kept += [a for a in existing if a["id"] == str(entry["id"])]
    if files and not payload.get("attachments"):
        uploads += [(p["filename"], p["data"], p["content_type"]) for p in files.values()]
    fields: dict[str, Any] = {k: payload[k] for k in ("content", "embeds", "components") if k in payload}
    fields["attachments"] = kept
    return fields, uploads
