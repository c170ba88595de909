"""`nanoclaw doctor`'s podman line: version, rootless or rootful, whether the engine answers, and the fix."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nanoclaw_app.cli import main
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.migrate import migrate
from nanoclaw_app.doctor import Check, render, run_checks
from nanoclaw_app.host import Host
from nanoclaw_app.paths import Paths
from nanoclaw_app.runtime import podman_socket
from nanoclaw_app.settings import save_settings
from tests.web import conftest as web

web_settings, keyring_backend, web_host = web.web_settings, web.keyring_backend, web.web_host  # the running app


@pytest.fixture(autouse=True)
def _no_ambient_podman(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CONTAINER_HOST", raising=False)
    monkeypatch.setattr(podman_socket, "standard_socket_path", lambda uid=None: tmp_path / "no-standard.sock")


async def _podman_check(paths: Paths) -> Check:
    checks = {c.name: c for c in await run_checks(paths)}
    return checks["podman"]


@pytest.mark.podman
async def test_podman_line_reports_version_mode_and_a_briefly_started_engine(paths: Paths) -> None:
    check = await _podman_check(paths)
    assert check.ok, check.detail
    assert check.required is True
    assert check.detail.startswith("podman version ")
    assert ("rootless" if os.geteuid() != 0 else "rootful") in check.detail
    assert "answers at" in check.detail
    assert "started briefly for this check" in check.detail
    assert not (paths.run / "podman.sock").exists()


async def test_configured_url_that_does_not_answer_fails_with_the_fix(paths: Paths) -> None:
    save_settings(paths, {"podman_url": f"unix://{paths.run / 'nothing-here.sock'}"})
    check = await _podman_check(paths)
    assert check.ok is False
    assert check.required is True
    assert "does not answer" in check.detail
    assert "podman_url" in check.fix
    assert "fix: " in render([check])


async def test_missing_podman_shows_how_to_install_it(paths: Paths, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    check = await _podman_check(paths)
    assert check.ok is False
    assert "not installed" in check.detail
    assert "install podman" in check.fix.lower()


async def test_podman_is_optional_when_agents_run_locally(paths: Paths, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    save_settings(paths, {"runtime": "local"})
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    check = await _podman_check(paths)
    assert check.ok is False
    assert check.required is False
    assert "[warn] podman" in render([check])


def test_doctor_json_carries_the_podman_check(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert main(["doctor", "--json"]) == 1
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert set(checks["podman"]) == {"name", "ok", "detail", "fix", "required"}
    assert checks["podman"]["ok"] is False
    assert "install" in checks["podman"]["fix"].lower()


async def test_whatsapp_line_says_the_native_library_loads(paths: Paths) -> None:
    checks = {c.name: c for c in await run_checks(paths)}
    check = checks["whatsapp"]
    assert check.ok, check.detail
    assert check.required is False
    assert "native library loads" in check.detail


def test_doctor_on_a_fresh_home_passes_and_says_the_first_start_sets_up_the_database(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, paths: Paths
) -> None:
    monkeypatch.setenv("NANOCLAW_RUNTIME", "local")  # Podman is then optional: this test is about the database
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "[ok  ] database:" in out
    assert "the first start" in out
    assert not paths.central_db.exists()  # the doctor only looks


async def test_pending_migrations_are_applied_by_the_next_start_so_they_are_no_failure(paths: Paths) -> None:
    async with Database(paths.central_db) as db:
        await migrate(db)
        await db.execute("DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)")
    check = {c.name: c for c in await run_checks(paths)}["database"]
    assert check.ok, check.detail
    assert "1 migration(s) pending" in check.detail
    assert "the next start" in check.detail


async def test_doctor_shows_the_address_of_the_running_app(paths: Paths, web_host: Host) -> None:
    check = {c.name: c for c in await run_checks(paths)}["settings"]
    assert web_host.url is not None
    assert f"running at {web_host.url}" in check.detail
    await web_host.stop()
    check = {c.name: c for c in await run_checks(paths)}["settings"]
    assert "running at" not in check.detail
    assert "not running" in check.detail
