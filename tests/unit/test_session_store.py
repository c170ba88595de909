"""The session store and its file hardening (original host-core.test: folders, DBs, traversal and symlink defenses)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent_runner.protocol import PROTOCOL_VERSION
from nanoclaw_app.errors import AttachmentTooLarge, UnsafePath
from nanoclaw_app.sessions.files import read_outbox_file, write_inbox_file
from nanoclaw_app.sessions.store import INBOUND, OUTBOUND, NewInbound, SessionStore

CAP = 1024


def row(row_id: str) -> NewInbound:
    return NewInbound(id=row_id, kind="chat", content='{"text":"hi"}', timestamp="2024-01-01T00:00:00.000Z")


@pytest.fixture
async def folder(store: SessionStore) -> Path:
    return await store.create("ag-1", "sess-1")


def journal_mode(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------- folders and DBs


async def test_create_makes_folder_both_dbs_and_file_areas(folder: Path, store: SessionStore) -> None:
    assert folder == store.root / "ag-1" / "sess-1"
    assert {p.name for p in folder.iterdir()} >= {INBOUND, OUTBOUND, "inbox", "outbox"}
    assert (folder.stat().st_mode & 0o777) == 0o700


async def test_both_dbs_use_delete_journal_never_wal(folder: Path) -> None:
    assert journal_mode(folder / INBOUND) == "delete"
    assert journal_mode(folder / OUTBOUND) == "delete"
    for name in (INBOUND, OUTBOUND):
        conn = sqlite3.connect(folder / name)
        try:
            assert conn.execute("SELECT value FROM meta WHERE key = 'protocol_version'").fetchone()[0] == str(
                PROTOCOL_VERSION)
        finally:
            conn.close()


async def test_create_is_idempotent_and_keeps_rows(folder: Path, store: SessionStore) -> None:
    await store.write_inbound(folder, row("a"))
    await store.create("ag-1", "sess-1")
    assert await store.read(folder, lambda c: c.execute("SELECT COUNT(*) FROM messages_in").fetchone()[0]) == 1


async def test_writes_leave_no_journal_or_wal_behind(folder: Path, store: SessionStore) -> None:
    await store.write_inbound(folder, row("a"))
    names = {p.name for p in folder.iterdir()}
    assert not any(n.endswith(("-wal", "-shm", "-journal")) for n in names)


@pytest.mark.parametrize(("agent", "session"), [("..", "s"), ("a/b", "s"), ("a", "../s"), ("a", "/abs"), ("", "s")])
def test_session_dir_refuses_unsafe_ids(store: SessionStore, agent: str, session: str) -> None:
    with pytest.raises(UnsafePath):
        store.dir(agent, session)


async def test_create_replaces_a_symlinked_inbox_with_a_real_folder(store: SessionStore, tmp_path: Path) -> None:
    folder = await store.create("ag-1", "sess-1")
    target = tmp_path / "target"
    target.mkdir()
    (folder / "inbox").rmdir()
    (folder / "inbox").symlink_to(target, target_is_directory=True)
    await store.create("ag-1", "sess-1")
    assert not (folder / "inbox").is_symlink()
    assert (folder / "inbox").is_dir()


# ---------------------------------------------------------------------------------------------- seq


async def test_host_seq_numbers_are_even_and_increasing(folder: Path, store: SessionStore) -> None:
    seqs = [(await store.write_inbound(folder, row(f"r{i}")))[0] for i in range(3)]
    assert seqs == [2, 4, 6]


async def test_next_seq_follows_the_highest_even_number(folder: Path, store: SessionStore) -> None:
    await store.write(folder, lambda c: c.execute(
        "INSERT INTO messages_in (id, seq, kind, timestamp, content) VALUES ('old', 40, 'chat', 't', '{}')"))
    assert (await store.write_inbound(folder, row("new")))[0] == 42


async def test_odd_seq_is_refused_by_the_schema(folder: Path, store: SessionStore) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        await store.write(folder, lambda c: c.execute(
            "INSERT INTO messages_in (id, seq, kind, timestamp, content) VALUES ('x', 3, 'chat', 't', '{}')"))


async def test_reinserting_the_same_id_is_a_no_op(folder: Path, store: SessionStore) -> None:
    first = await store.write_inbound(folder, row("same"))
    again = await store.write_inbound(folder, row("same"))
    assert first == (2, True)
    assert again == (2, False)
    assert await store.read(folder, lambda c: c.execute("SELECT COUNT(*) FROM messages_in").fetchone()[0]) == 1


async def test_writing_to_a_missing_session_fails_loudly(store: SessionStore) -> None:
    with pytest.raises(FileNotFoundError):
        await store.write_inbound(store.dir("ag-1", "never-created"), row("a"))


# ---------------------------------------------------------------------------------------------- inbox writes


def test_inbox_write_lands_inside_the_session(folder: Path) -> None:
    rel = write_inbox_file(folder, "m1", "note.txt", b"hello", CAP)
    assert rel == "inbox/m1/note.txt"
    assert (folder / rel).read_bytes() == b"hello"
    assert ((folder / rel).stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize("name", ["../x", "../../etc/passwd", "/etc/passwd", "a/b", "..\\x", ".", "..", "", "a\x00b"])
def test_inbox_refuses_unsafe_names(folder: Path, name: str) -> None:
    with pytest.raises(UnsafePath):
        write_inbox_file(folder, "m1", name, b"x", CAP)


@pytest.mark.parametrize("message_id", ["..", "../m", "/abs", "a/b"])
def test_inbox_refuses_unsafe_message_ids(folder: Path, message_id: str) -> None:
    with pytest.raises(UnsafePath):
        write_inbox_file(folder, message_id, "ok.txt", b"x", CAP)


def test_inbox_refuses_a_symlinked_inbox(folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (folder / "inbox").rmdir()
    (folder / "inbox").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePath, match="symlink"):
        write_inbox_file(folder, "m1", "a.txt", b"x", CAP)
    assert list(outside.iterdir()) == []


def test_inbox_refuses_a_symlinked_message_folder(folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (folder / "inbox" / "m1").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePath, match="symlink"):
        write_inbox_file(folder, "m1", "a.txt", b"x", CAP)
    assert list(outside.iterdir()) == []


def test_inbox_never_overwrites_nor_follows_a_planted_file(folder: Path, tmp_path: Path) -> None:
    write_inbox_file(folder, "m1", "a.txt", b"first", CAP)
    with pytest.raises(UnsafePath, match="already exists"):
        write_inbox_file(folder, "m1", "a.txt", b"second", CAP)
    assert (folder / "inbox" / "m1" / "a.txt").read_bytes() == b"first"
    victim = tmp_path / "victim"
    victim.write_bytes(b"safe")
    (folder / "inbox" / "m1" / "planted").symlink_to(victim)
    with pytest.raises(UnsafePath):
        write_inbox_file(folder, "m1", "planted", b"pwned", CAP)
    assert victim.read_bytes() == b"safe"


def test_inbox_size_cap(folder: Path) -> None:
    write_inbox_file(folder, "m1", "exact.bin", b"x" * CAP, CAP)
    with pytest.raises(AttachmentTooLarge):
        write_inbox_file(folder, "m1", "over.bin", b"x" * (CAP + 1), CAP)
    assert not (folder / "inbox" / "m1" / "over.bin").exists()


# ---------------------------------------------------------------------------------------------- outbox reads


def put_outbox(folder: Path, message_id: str, name: str, data: bytes) -> Path:
    path = folder / "outbox" / message_id / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_outbox_read_returns_the_file(folder: Path) -> None:
    put_outbox(folder, "o1", "report.pdf", b"%PDF")
    assert read_outbox_file(folder, "o1", "report.pdf", CAP) == b"%PDF"



@pytest.mark.parametrize("name", ["../inbound.db", "../../secret", "/etc/passwd", "a/b"])
def test_outbox_refuses_traversal_names(folder: Path, name: str) -> None:
    with pytest.raises(UnsafePath):
        read_outbox_file(folder, "o1", name, CAP)


def test_outbox_refuses_a_symlinked_file(folder: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"keys")
    (folder / "outbox" / "o1").mkdir()
    (folder / "outbox" / "o1" / "leak.txt").symlink_to(secret)
    with pytest.raises(UnsafePath, match="symlink"):
        read_outbox_file(folder, "o1", "leak.txt", CAP)


def test_outbox_refuses_symlinked_folders(folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "o1").mkdir(parents=True)
    (outside / "o1" / "f.txt").write_bytes(b"x")
    (folder / "outbox" / "o1").symlink_to(outside / "o1", target_is_directory=True)
    with pytest.raises(UnsafePath, match="symlink"):
        read_outbox_file(folder, "o1", "f.txt", CAP)
    (folder / "outbox" / "o1").unlink()
    (folder / "outbox").rmdir()
    (folder / "outbox").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePath, match="symlink"):
        read_outbox_file(folder, "o1", "f.txt", CAP)


def test_outbox_refuses_missing_and_oversized_files(folder: Path) -> None:
    with pytest.raises(UnsafePath, match="does not exist"):
        read_outbox_file(folder, "o1", "ghost.txt", CAP)
    put_outbox(folder, "o1", "huge.bin", b"x" * (CAP + 1))
    with pytest.raises(AttachmentTooLarge):
        read_outbox_file(folder, "o1", "huge.bin", CAP)


# ---------------------------------------------------------------------------------------------- host/container split


async def test_delivery_is_recorded_in_inbound_and_read_with_outbound(folder: Path, store: SessionStore) -> None:
    conn = sqlite3.connect(folder / OUTBOUND)
    try:
        conn.execute("INSERT INTO messages_out (id, seq, timestamp, kind, content) VALUES ('o1', 1, 't', 'chat', '{}')")
        conn.commit()
    finally:
        conn.close()
    assert [r.id for r in await store.due_outbound(folder)] == ["o1"]
    await store.record_delivery(folder, "o1", "pm-1", "delivered")
    await store.record_delivery(folder, "o1", "pm-2", "delivered")  # a second record never overwrites the first
    assert await store.due_outbound(folder) == []
    pm = await store.read(folder, lambda c: c.execute("SELECT platform_message_id FROM delivered").fetchall())
    assert [r[0] for r in pm] == ["pm-1"]


async def test_host_reads_outbound_read_only(folder: Path, store: SessionStore) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await store.read_outbound(folder, lambda c: c.execute("DELETE FROM messages_out"))


async def test_orphan_acks_are_deleted_only_while_processing(folder: Path, store: SessionStore) -> None:
    conn = sqlite3.connect(folder / OUTBOUND)
    try:
        conn.executemany("INSERT INTO processing_ack (message_id, status, status_changed) VALUES (?, ?, 't')",
                         [("a", "processing"), ("b", "completed"), ("c", "processing")])
        conn.commit()
    finally:
        conn.close()
    assert await store.delete_orphan_acks(folder, ["a"]) == 1
    assert await store.delete_orphan_acks(folder) == 1
    left = await store.read_outbound(folder, lambda c: c.execute("SELECT message_id FROM processing_ack").fetchall())
    assert [r[0] for r in left] == ["b"]
