"""``doctor --live`` against a container that plants links in the check's folders while it runs.

The attacker has a shell in the check's container (``podman exec``) and points links at the user's files and
folders from the session folder and the agent folder; the clean-up must delete the links, never what they point at,
and the check must still finish and report.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from nanoclaw_app.doctor_live import AGENT_ID, live_check
from nanoclaw_app.paths import Paths
from nanoclaw_app.runtime.container_config import LABEL_AGENT
from tests.podman.conftest import BASE_IMAGE, ca_file

pytestmark = pytest.mark.podman


async def _podman(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec("podman", *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return out.decode()


async def _plant(victim: Path) -> str:
    """Wait for the check's container, then plant links to the user's folder and file inside its mounts."""
    deadline = time.monotonic() + 60
    while True:
        names = (await _podman("ps", "--filter", f"label={LABEL_AGENT}={AGENT_ID}", "--format", "{{.Names}}")).split()
        if names:
            break
        assert time.monotonic() < deadline, "the check's container never started"
        await asyncio.sleep(0.05)
    script = (f"ln -s {victim} /workspace/planted-dir && ln -s {victim}/keep.txt /workspace/inbox/planted-file && "
              f"mkdir -p /workspace/agent/deeper && ln -s {victim} /workspace/agent/deeper/link && echo planted")
    return await _podman("exec", names[0], "sh", "-c", script)


async def test_links_planted_during_the_check_are_removed_and_never_followed(
    podman_url: str, agent_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NANOCLAW_PODMAN_URL", podman_url)
    monkeypatch.setenv("NANOCLAW_AGENT_BASE_IMAGE", BASE_IMAGE)
    monkeypatch.setenv("NANOCLAW_AGENT_CA_CERTIFICATES", ca_file())
    victim = tmp_path / "users-folder"
    victim.mkdir()
    (victim / "keep.txt").write_text("the user's file\n", encoding="utf-8")
    paths = Paths.from_env()

    check, planted = await asyncio.gather(live_check(paths, rows=300), _plant(victim))

    assert planted.strip() == "planted"
    assert check.data is not None, check.detail
    assert check.data["answered"] == 300, check.detail
    assert sorted(p.name for p in victim.iterdir()) == ["keep.txt"]
    assert (victim / "keep.txt").read_text(encoding="utf-8") == "the user's file\n"
    assert not list(paths.home.glob("doctor-live-*"))
