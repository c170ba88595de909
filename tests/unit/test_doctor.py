"""`nanoclaw doctor`'s podman line: version, rootless or rootful, whether the engine answers, and the fix."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nanoclaw_app.cli import main
from nanoclaw_app.doctor import Check, render, run_checks
from nanoclaw_app.paths import Paths
from nanoclaw_app.runtime import podman_socket
from nanoclaw_app.settings import save_settings


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
