"""``nanoclaw doctor --live`` through the real entry point, on real Podman with the real agent image.

No timing is asserted (that is the report's own verdict); what must hold is that every row crossed in both
directions, the heartbeat moved, the numbers are there, and nothing of the check is left behind.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from nanoclaw_app.cli import main
from nanoclaw_app.paths import Paths
from nanoclaw_app.runtime.container_config import LABEL_INSTALL
from nanoclaw_app.runtime.podman_api import PodmanApi
from nanoclaw_app.runtime.podman_runtime import install_id
from tests.podman.conftest import BASE_IMAGE, ca_file


@pytest.fixture
def live_home(podman_url: str, agent_image: str, monkeypatch: pytest.MonkeyPatch) -> Paths:
    """This test's home, set to use the test engine and the agent image built for the run."""
    monkeypatch.setenv("NANOCLAW_RUNTIME", "podman")
    monkeypatch.setenv("NANOCLAW_PODMAN_URL", podman_url)
    monkeypatch.setenv("NANOCLAW_AGENT_BASE_IMAGE", BASE_IMAGE)
    monkeypatch.setenv("NANOCLAW_AGENT_CA_CERTIFICATES", ca_file())
    return Paths.from_env()


def _leftovers(podman_url: str, home: Path) -> tuple[list[str], list[str]]:
    """The check's containers still in the engine, and its folders still in the home."""

    async def containers() -> list[str]:
        api = PodmanApi(podman_url)
        try:
            return [c.name for c in await api.list({LABEL_INSTALL: install_id(home)})]
        finally:
            await api.close()

    return asyncio.run(containers()), sorted(p.name for p in home.glob("doctor-live-*"))


def test_doctor_live_sees_every_row_both_ways_and_the_heartbeat_move(
    live_home: Paths, podman_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["doctor", "--live", "--json"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}

    live = checks["live"]
    assert code == 0, live
    data = live["data"]
    assert data["rows"] == data["answered"] == 100, live["detail"]
    assert data["heartbeat_moved"] is True, live["detail"]
    for direction in ("inbound", "outbound"):
        numbers = data[direction]
        assert 0 <= numbers["p50_ms"] <= numbers["p99_ms"] <= numbers["max_ms"], numbers
    assert data["target_p99_ms"] == 50.0
    assert data["verdict"] == "within target" or data["verdict"].startswith("slower than expected: ")
    assert data["container_watch"] in ("inotify", "watchfiles", "polling")
    assert _leftovers(podman_url, live_home.home) == ([], [])


def test_doctor_live_says_it_in_words(live_home: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    main(["doctor", "--live"])
    out = capsys.readouterr().out

    assert "host → container (inbound.db): 100 of 100 rows seen; half within " in out
    assert "container → host (outbound.db): 100 of 100 rows seen; half within " in out
    assert "heartbeat: moved" in out
    assert "live: within target" in out or "live: slower than expected: " in out


def test_doctor_live_without_the_agent_image_says_how_to_build_it(
    live_home: Paths, podman_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NANOCLAW_AGENT_BASE_IMAGE", "localhost/nanoclaw-no-such-base:1")
    code = main(["doctor", "--live", "--json"])
    live = {c["name"]: c for c in json.loads(capsys.readouterr().out)}["live"]

    assert code == 1
    assert live["ok"] is False
    assert live["detail"] == "the agent image is not built yet, so no container can start"
    assert "image build`" in live["fix"]
    assert _leftovers(podman_url, live_home.home) == ([], [])
