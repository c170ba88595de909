"""Attachments on the routing path: saved safely under ``inbox/``; a refused one is reported, the message kept."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from nanoclaw_app.core import inbox
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import InboundMessage, IncomingAttachment
from nanoclaw_app.core.router import NoApprovals, Router
from nanoclaw_app.db import agents, messaging, users
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.messaging import WiringSpec
from nanoclaw_app.db.rows import Session


@pytest.fixture
async def session(ctx: CoreContext) -> Session:
    agent = await agents.create(ctx.db, "Alpha")
    chat = await messaging.create(ctx.db, "test", "chat-1")
    await messaging.wire(ctx.db, chat.id, agent.id, WiringSpec("pattern", "."))
    await users.upsert(ctx.db, "test:alice", "test", "Alice")
    await users.add_member(ctx.db, "test:alice", agent.id)
    s, _ = await sessions_db.find_or_create(ctx.db, agent.id, "shared", chat.id, None)
    await ctx.store.create(agent.id, s.id)
    return s


def msg(*files: IncomingAttachment, message_id: str = "p-1", **extra: Any) -> InboundMessage:
    return InboundMessage(channel_type="test", platform_id="chat-1", message_id=message_id, sender_id="alice",
                          text="see attached", attachments=files, **extra)


def folder_of(ctx: CoreContext, session: Session) -> Path:
    return ctx.store.dir(session.agent_group_id, session.id)


async def content_of(ctx: CoreContext, session: Session, seq: int) -> dict[str, Any]:
    row = await ctx.store.read(
        folder_of(ctx, session),
        lambda c: c.execute("SELECT content FROM messages_in WHERE seq = ?", (seq,)).fetchone(),
        with_outbound=False,
    )
    data: dict[str, Any] = json.loads(row["content"])
    return data


async def test_attachment_is_saved_and_its_local_path_given_to_the_agent(ctx: CoreContext, session: Session) -> None:
    seq = await inbox.write_message(ctx, session, msg(IncomingAttachment("photo.jpg", b"JPEG", "image/jpeg", "image")),
                                    trigger=True)
    [att] = (await content_of(ctx, session, seq))["attachments"]
    assert att == {"name": "photo.jpg", "mime_type": "image/jpeg", "size": 4, "kind": "image",
                   "local_path": "inbox/p-1/photo.jpg"}
    assert (folder_of(ctx, session) / "inbox" / "p-1" / "photo.jpg").read_bytes() == b"JPEG"


@pytest.mark.parametrize("name", ["../../evil.sh", "/etc/passwd", "..\\win.ini", "..", "sub/dir.txt"])
async def test_unsafe_name_is_refused_but_the_message_is_kept(
    ctx: CoreContext, session: Session, caplog: pytest.LogCaptureFixture, tmp_path: Path, name: str
) -> None:
    with caplog.at_level(logging.ERROR):
        seq = await inbox.write_message(ctx, session, msg(IncomingAttachment(name, b"x")), trigger=True)
    content = await content_of(ctx, session, seq)
    assert content["text"] == "see attached"
    [att] = content["attachments"]
    assert "local_path" not in att
    assert "not saved" in att["error"]
    assert "refused" in caplog.text
    assert not (tmp_path / "evil.sh").exists()
    assert list((folder_of(ctx, session) / "inbox").rglob("*.*")) == []


async def test_oversized_attachment_is_refused_and_the_rest_kept(
    ctx: CoreContext, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    ctx.settings = dataclasses.replace(ctx.settings, max_attachment_bytes=8)
    files = (IncomingAttachment("big.bin", b"x" * 9), IncomingAttachment("small.txt", b"ok"))
    with caplog.at_level(logging.ERROR):
        seq = await inbox.write_message(ctx, session, msg(*files), trigger=True)
    big, small = (await content_of(ctx, session, seq))["attachments"]
    assert "limit is 8" in big["error"]
    assert big["size"] == 9
    assert small["local_path"] == "inbox/p-1/small.txt"
    assert "big.bin" in caplog.text


async def test_symlinked_inbox_is_refused_and_nothing_written_through_it(
    ctx: CoreContext, session: Session, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    box = folder_of(ctx, session) / "inbox"
    box.rmdir()
    box.symlink_to(elsewhere, target_is_directory=True)
    with caplog.at_level(logging.ERROR):
        seq = await inbox.write_message(ctx, session, msg(IncomingAttachment("a.txt", b"x")), trigger=True)
    [att] = (await content_of(ctx, session, seq))["attachments"]
    assert "symlink" in att["error"]
    assert list(elsewhere.iterdir()) == []
    assert "symlink" in caplog.text


async def test_platform_ids_that_are_not_file_names_stay_inside_the_inbox(ctx: CoreContext, session: Session) -> None:
    seq = await inbox.write_message(
        ctx, session, msg(IncomingAttachment("a.txt", b"x"), message_id="../../chat:1/2"), trigger=True
    )
    [att] = (await content_of(ctx, session, seq))["attachments"]
    path = (folder_of(ctx, session) / att["local_path"]).resolve()
    assert path.is_relative_to((folder_of(ctx, session) / "inbox").resolve())
    assert path.read_bytes() == b"x"
    assert ":" not in att["local_path"]


async def test_duplicate_and_missing_names_all_arrive(ctx: CoreContext, session: Session) -> None:
    files = (IncomingAttachment("a.txt", b"1"), IncomingAttachment("a.txt", b"2"), IncomingAttachment("", b"3"))
    seq = await inbox.write_message(ctx, session, msg(*files), trigger=True)
    paths = [a["local_path"] for a in (await content_of(ctx, session, seq))["attachments"]]
    assert paths == ["inbox/p-1/a.txt", "inbox/p-1/a-2.txt", "inbox/p-1/attachment-3"]
    assert [(folder_of(ctx, session) / p).read_bytes() for p in paths] == [b"1", b"2", b"3"]


async def test_rerouting_a_message_with_attachments_is_idempotent(
    ctx: CoreContext, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    m = msg(IncomingAttachment("a.txt", b"x"))
    with caplog.at_level(logging.ERROR):
        first = await inbox.write_message(ctx, session, m, trigger=True)
        again = await inbox.write_message(ctx, session, m, trigger=True)
    assert first == again == 2
    assert caplog.text == ""
    assert "error" not in (await content_of(ctx, session, first))["attachments"][0]


async def test_extras_that_are_not_json_do_not_lose_the_message(
    ctx: CoreContext, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        seq = await inbox.write_message(ctx, session, msg(extra={"raw": object(), "from_me": False}), trigger=False)
    content = await content_of(ctx, session, seq)
    assert content["text"] == "see attached"
    assert "raw" not in content
    assert "not JSON" in caplog.text


async def test_router_keeps_a_message_whose_attachment_was_refused(
    ctx: CoreContext, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    router = Router(ctx, NoApprovals())
    with caplog.at_level(logging.ERROR):
        result = await router.route(msg(IncomingAttachment("../escape", b"x")))
    [outcome] = result.delivered
    assert outcome.session_id == session.id
    [att] = (await content_of(ctx, session, outcome.seq or 0))["attachments"]
    assert "error" in att
    assert "../escape" in caplog.text


async def test_same_message_id_from_another_chat_gets_its_own_inbox_folder(
    ctx: CoreContext, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    first = msg(IncomingAttachment("a.txt", b"one"), message_id="17")
    other = dataclasses.replace(msg(IncomingAttachment("a.txt", b"two"), message_id="17"), platform_id="chat-2")
    with caplog.at_level(logging.ERROR):
        s1 = await inbox.write_message(ctx, session, first, trigger=True)
        s2 = await inbox.write_message(ctx, session, other, trigger=True)
    assert (s1, s2) == (2, 4)
    paths = [(await content_of(ctx, session, s))["attachments"][0]["local_path"] for s in (s1, s2)]
    assert paths[0] != paths[1]
    assert [(folder_of(ctx, session) / p).read_bytes() for p in paths] == [b"one", b"two"]
    assert caplog.text == ""
