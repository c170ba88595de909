"""Host and runner writing one session at the same time never lock each other out.

Each side writes only its own file and never holds a lock on the other's file while committing; otherwise each
commit waits for the other's read lock until the busy timeout ("database is locked").
"""

from __future__ import annotations

import asyncio
import threading

from agent_runner.protocol import ChatContent, TextOut
from agent_runner.session_db import NewOutbound, SessionDB
from nanoclaw_app.core.sweep import read_final_acks, sync_acks
from nanoclaw_app.ids import new_id
from nanoclaw_app.sessions.store import NewInbound, SessionStore
from nanoclaw_app.timeutil import now_iso

ROUNDS = 150


async def test_host_and_runner_write_concurrently_without_lock_errors(store: SessionStore) -> None:
    folder = await store.create("ag-1", "sess-1")
    runner = SessionDB(folder)
    errors: list[BaseException] = []
    inbound_ids: list[str] = []

    def runner_side() -> None:
        try:
            for n in range(ROUNDS):
                ids = list(inbound_ids[-2:])
                runner.claim(ids)
                runner.write_messages(
                    [NewOutbound(kind="chat", content=TextOut(text=f"reply {n}").to_json(), channel_type="test",
                                 platform_id="chat-1")],
                    complete=ids,
                )
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=runner_side)
    thread.start()
    try:
        for n in range(ROUNDS):
            row_id = new_id("msg")
            await store.write_inbound(folder, NewInbound(
                id=row_id, kind="chat", content=ChatContent(text=f"hi {n}").to_json(), timestamp=now_iso(),
                channel_type="test", platform_id="chat-1"))
            inbound_ids.append(row_id)
            acks = await store.read_outbound(folder, read_final_acks)
            await store.write(folder, lambda conn, acks=acks: sync_acks(conn, acks))
            await store.due_outbound(folder)
    finally:
        await asyncio.to_thread(thread.join)
    assert errors == []
    outbound = await store.read_outbound(folder, lambda c: c.execute("SELECT COUNT(*) FROM messages_out").fetchone())
    assert outbound[0] == ROUNDS
