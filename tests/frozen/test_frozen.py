"""The frozen binary: PyInstaller builds it from build.spec, it serves /health, and it exits cleanly on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.frozen, pytest.mark.slow]


def test_binary_prints_its_version(binary: Path) -> None:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60, check=True)
    assert re.fullmatch(r"nanoclaw \d+\.\d+\.\d+\s*", out.stdout)


def test_binary_loads_every_channels_library(binary: Path, tmp_path: Path) -> None:
    env = {**os.environ, "NANOCLAW_HOME": str(tmp_path / "home"), "NANOCLAW_CONFIG_DIR": str(tmp_path / "cfg"),
           "CONTAINER_HOST": "unix:///nonexistent/podman.sock"}
    out = subprocess.run([str(binary), "doctor"], capture_output=True, text=True, timeout=120, check=False, env=env)
    lines = {ln.split("] ", 1)[1].split(":", 1)[0]: ln for ln in out.stdout.splitlines() if ln.startswith("[")}
    assert lines.get("whatsapp", "").startswith("[ok  ] whatsapp: neonize"), out.stdout + out.stderr
    assert lines.get("discord", "").startswith("[ok  ] discord: discord.py"), out.stdout + out.stderr
    assert lines.get("slack", "").startswith("[ok  ] slack: slack-bolt"), out.stdout + out.stderr


def test_binary_serves_health_and_exits_cleanly(binary: Path, tmp_path: Path) -> None:
    env = {**os.environ, "NANOCLAW_HOME": str(tmp_path / "home"), "NANOCLAW_CONFIG_DIR": str(tmp_path / "cfg")}
    with subprocess.Popen(
        [str(binary), "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        try:
            assert proc.stdout is not None
            url = None
            for line in proc.stdout:
                match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
                if match:
                    url = match.group(1)
                    break
            assert url is not None, proc.stderr.read() if proc.stderr else "no output"
            response = httpx.get(url + "health", timeout=10)
            assert response.status_code == 200
            assert response.json()["status"] == "ok"
            # the migrated database was created in the home we gave it
            assert (tmp_path / "home" / "nanoclaw.db").is_file()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
