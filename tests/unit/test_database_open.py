"""A database that cannot be opened is said in words the app can show, not as an SQLite traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from nanoclaw_app.db.database import Database
from nanoclaw_app.errors import NanoClawError


async def test_a_folder_where_the_file_belongs_is_a_plain_error(tmp_path: Path) -> None:
    path = tmp_path / "nanoclaw.db"
    path.mkdir()
    with pytest.raises(NanoClawError, match=r"cannot open its database .*nanoclaw\.db .*belongs to you"):
        await Database(path).open()


async def test_a_file_that_is_not_a_database_is_a_plain_error_and_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "nanoclaw.db"
    path.write_bytes(b"this is not SQLite" * 100)
    database = Database(path)
    with pytest.raises(NanoClawError, match="file is not a database"):
        await database.open()
    assert path.read_bytes() == b"this is not SQLite" * 100
    await database.close()  # nothing half-open is left behind
