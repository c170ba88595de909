"""The container's side of a session, for tests: write ``messages_out`` rows exactly as the runner will."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent_runner.protocol import next_container_seq
from nanoclaw_app.ids import new_id


def write_out(folder: Path, content: str, *, kind: str = "chat", channel_type: str | None = "test",
              platform_id: str | None = "chat-1", thread_id: str | None = None, in_reply_to: str | None = None,
              deliver_after: str | None = None, row_id: str | None = None) -> tuple[str, int]:
    """Insert a messages_out row with the next odd seq across both DBs; returns (id, seq)."""
    row_id = row_id or new_id("out")
    inbound = sqlite3.connect(f"file:{folder / 'inbound.db'}?mode=ro", uri=True)
    try:
        max_in = inbound.execute("SELECT MAX(seq) FROM messages_in").fetchone()[0] or 0
    finally:
        inbound.close()
    conn = sqlite3.connect(folder / "outbound.db")
    try:
        max_out = conn.execute("SELECT MAX(seq) FROM messages_out").fetchone()[0] or 0
        seq = next_container_seq(max(max_in, max_out))
        conn.execute(
            "INSERT INTO messages_out (id, seq, in_reply_to, timestamp, deliver_after, kind, platform_id, channel_type,"
            " thread_id, content) VALUES (?, ?, ?, datetime('now'), ?, ?, ?, ?, ?, ?)",
            (row_id, seq, in_reply_to, deliver_after, kind, platform_id, channel_type, thread_id, content),
        )
        conn.commit()
    finally:
        conn.close()
    return row_id, seq
