"""The one helper for container-writable folders: every kind of planted entry is refused, nothing is followed.

These play the container without Podman (a folder the test rewrites as an agent would); the end-to-end attacks through
a real container are in ``test_session_files.py``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_runner.protocol import OUTBOUND_SCHEMA
from nanoclaw_app.errors import SessionDamaged, UnsafePath
from nanoclaw_app.sessions.mounted import MountedDir
from nanoclaw_app.sessions.store import INBOUND, OUTBOUND, SessionStore

CAP = 1024


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file of the user's outside every mount."""
    path = tmp_path / "victim.txt"
    path.write_text("the user's file\n", encoding="utf-8")
    return path


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[MountedDir]:
    folder = tmp_path / "session"
    folder.mkdir()
    with MountedDir.open(folder) as where:
        yield where


def test_a_symlink_is_neither_read_nor_written_through(mounted: MountedDir, victim: Path) -> None:
    (mounted.path / "memory.md").symlink_to(victim)
    with pytest.raises(UnsafePath, match="symlink"):
        mounted.read_bytes("memory.md", max_bytes=CAP)
    with pytest.raises(UnsafePath, match="already exists"):
        mounted.write_new("memory.md", b"pwned")
    mounted.replace("memory.md", b"new text")  # replaces the link itself
    assert victim.read_text(encoding="utf-8") == "the user's file\n"
    assert (mounted.path / "memory.md").read_bytes() == b"new text"
    assert not (mounted.path / "memory.md").is_symlink()


def test_a_fifo_is_refused_without_hanging(mounted: MountedDir) -> None:
    os.mkfifo(mounted.path / "pipe")
    with pytest.raises(UnsafePath, match="pipe"):
        mounted.read_bytes("pipe", max_bytes=CAP)


def test_a_hard_link_is_refused(mounted: MountedDir, tmp_path: Path) -> None:
    (mounted.path / "a").write_bytes(b"x")
    os.link(mounted.path / "a", mounted.path / "b")
    with pytest.raises(UnsafePath, match="2 hard links"):
        mounted.read_bytes("b", max_bytes=CAP)


def test_a_folder_or_a_huge_file_is_refused(mounted: MountedDir) -> None:
    (mounted.path / "dir").mkdir()
    with pytest.raises(UnsafePath, match=r"not a regular file|folder"):
        mounted.read_bytes("dir", max_bytes=CAP)
    with (mounted.path / "huge").open("wb") as handle:
        handle.truncate(10 * 1024**3)  # sparse: 10 GB on paper, nothing on disk
    with pytest.raises(UnsafePath, match="limit"):
        mounted.read_bytes("huge", max_bytes=CAP)


def test_a_linked_subfolder_is_refused(mounted: MountedDir, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (mounted.path / "outbox").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePath, match="symlink"):
        mounted.walk("outbox", "m1", create=True)
    assert list(outside.iterdir()) == []


def test_removing_a_tree_never_follows_a_link_inside_it(mounted: MountedDir, tmp_path: Path, victim: Path) -> None:
    precious = tmp_path / "photos"
    precious.mkdir()
    (precious / "holiday.jpg").write_bytes(b"jpeg")
    tree = mounted.path / "outbox"
    (tree / "m1").mkdir(parents=True)
    (tree / "m1" / "photos").symlink_to(precious, target_is_directory=True)
    (tree / "m1" / "note").symlink_to(victim)
    assert mounted.remove_tree("outbox")
    assert not tree.exists()
    assert (precious / "holiday.jpg").read_bytes() == b"jpeg"
    assert victim.exists()


def test_a_swap_racing_the_reader_never_yields_the_linked_file(mounted: MountedDir, victim: Path) -> None:
    """The container flips the name between a file and a link as fast as it can; every read is the file or refused."""
    real = mounted.path / "note"
    real.write_bytes(b"agent text")
    link = mounted.path / ".link"
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            link.unlink(missing_ok=True)
            link.symlink_to(victim)
            link.replace(real)  # now a link
            real.unlink()
            real.write_bytes(b"agent text")  # now a file again

    thread = threading.Thread(target=flip)
    thread.start()
    seen: set[bytes] = set()
    try:
        for _ in range(2000):
            try:
                seen.add(mounted.read_bytes("note", max_bytes=CAP))
            except (UnsafePath, FileNotFoundError):
                seen.add(b"refused")
    finally:
        stop.set()
        thread.join()
    assert victim.read_bytes() not in seen


# ---------------------------------------------------------------------------------------------- session databases


async def test_session_dbs_are_refused_when_swapped_for_a_link_to_another_database(
    store: SessionStore, tmp_path: Path
) -> None:
    """Another agent's ``outbound.db`` linked in: the host would read its rows as this session's replies."""
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.executescript(OUTBOUND_SCHEMA)
    conn.close()
    folder = await store.create("ag-1", "sess-1")
    (folder / OUTBOUND).unlink()
    (folder / OUTBOUND).symlink_to(other)
    with pytest.raises(SessionDamaged, match="symlink") as caught:
        await store.due_outbound(folder)
    assert caught.value.file == OUTBOUND


async def test_a_dangling_inbound_link_is_damage_not_a_missing_file(store: SessionStore, tmp_path: Path) -> None:
    target = tmp_path / "created-by-sqlite.db"
    folder = await store.create("ag-1", "sess-1")
    (folder / INBOUND).unlink()
    (folder / INBOUND).symlink_to(target)
    with pytest.raises(SessionDamaged):
        await store.create("ag-1", "sess-1")  # "recreating" the session must not create the link's target
    assert not target.exists()


async def test_a_planted_journal_folder_is_damage(store: SessionStore) -> None:
    folder = await store.create("ag-1", "sess-1")
    (folder / f"{INBOUND}-journal").mkdir()
    with pytest.raises(SessionDamaged, match="journal"):
        await store.read(folder, lambda conn: None)


async def test_a_garbage_outbound_db_is_named_as_the_damaged_file(store: SessionStore) -> None:
    folder = await store.create("ag-1", "sess-1")
    (folder / OUTBOUND).write_bytes(os.urandom(8192))
    with pytest.raises(SessionDamaged) as caught:
        await store.due_outbound(folder)
    assert caught.value.file == OUTBOUND
    moved = await store.set_aside(folder, OUTBOUND)
    assert (moved / OUTBOUND).stat().st_size == 8192  # kept for a look, not deleted
    assert await store.due_outbound(folder) == []  # and the session works again on a fresh file
