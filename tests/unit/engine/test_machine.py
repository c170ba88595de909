"""`podman machine init` / `start` run by the app: what the CLI prints becomes phases and fractions a progress bar
can show, and failures come with the fix that helps."""

from __future__ import annotations

from pathlib import Path

import pytest

from nanoclaw_app.engine import machine
from nanoclaw_app.engine.problem import SetupFailed
from tests.fakes import os_tools

MAC_INIT = """Looking up Podman Machine image at quay.io/podman/machine-os:5.5 to create VM
Getting image source signatures
Copying blob 12113a444353 [====>-----] 312.5MiB / 1.0GiB
Copying blob 12113a444353 done   |
Copying config 44136fa355 done   |
Writing manifest to image destination
Extracting compressed file: podman-machine-default-arm64.raw [=====>--] 442.8MiB / 885.7MiB
Extracting compressed file: podman-machine-default-arm64.raw: done
Machine init complete"""

START = """Starting machine "podman-machine-default"
API forwarding listening on: /var/folders/x/podman-machine-default-api.sock
Machine "podman-machine-default" started successfully"""


def test_init_output_becomes_phases_with_fractions() -> None:
    reader = machine.ProgressReader("lookup")
    seen = [reader.read(line) for line in MAC_INIT.splitlines()]
    assert [(p.phase, None if p.fraction is None else round(p.fraction, 2)) for p in seen] == [
        ("lookup", None), ("download", None), ("download", 0.31), ("download", 1.0), ("download", 1.0),
        ("download", None), ("extract", 0.5), ("extract", 1.0), ("initialised", None),
    ]


def test_windows_lines_name_the_wsl_import() -> None:
    reader = machine.ProgressReader("lookup")
    phases = [reader.read(line).phase for line in (
        "Importing operating system into WSL (this may take a few minutes on a new WSL install)...",
        "The operation completed successfully.", "Configuring system...")]
    assert phases == ["import", "import", "configure"]


def test_start_output_ends_running() -> None:
    reader = machine.ProgressReader("start")
    assert [reader.read(line).phase for line in START.splitlines()] == ["start", "start", "running"]


async def test_init_reads_the_redrawn_progress_bar_of_the_real_command(tmp_path: Path) -> None:
    exe = os_tools.podman(tmp_path / "podman", tmp_path, wsl_machine=True)
    assert await machine.exists(str(exe)) is False
    seen: list[machine.Progress] = []
    await machine.init(str(exe), seen.append)
    downloads = [p.fraction for p in seen if p.phase == "download" and p.fraction is not None]
    assert downloads[:3] == [0.0, 0.1, 0.2]  # each carriage-return redraw is read as a line
    assert downloads[-1] == 1.0
    phases = [p.phase for p in seen]
    assert [phase for n, phase in enumerate(phases) if n == 0 or phases[n - 1] != phase] == [
        "lookup", "download", "extract", "import", "configure", "initialised"]
    assert await machine.exists(str(exe)) is True


@pytest.mark.parametrize(("printed", "fix"), [
    ("Error: initializing source docker://quay.io/podman/machine-os:5.6: pinging container registry quay.io: "
     "Get \"https://quay.io/v2/\": dial tcp: lookup quay.io: no such host", "check the connection"),
    ("Error: write /Users/me/.local/share/containers/podman/machine/x.raw: no space left on device",
     "free about 2 GB"),
    ("Error: something new went wrong", "podman machine init` in a terminal"),
])
async def test_a_failed_init_says_what_to_do(tmp_path: Path, printed: str, fix: str) -> None:
    exe = os_tools.podman(tmp_path / "podman", tmp_path, init_fail=printed)
    with pytest.raises(SetupFailed) as failed:
        await machine.init(str(exe), lambda p: None)
    assert failed.value.problem.startswith("Podman could not create its machine: ")
    assert "Error:" not in failed.value.problem
    assert fix in failed.value.fix


async def test_start_reports_progress_and_running(tmp_path: Path) -> None:
    exe = os_tools.podman(tmp_path / "podman", tmp_path, machine="stopped", api="/tmp/x.sock")
    seen: list[machine.Progress] = []
    await machine.start(str(exe), seen.append)
    assert seen[0].line == 'Starting machine "podman-machine-default"'
    assert seen[-1].phase == "running"
    assert os_tools.state(tmp_path)["machine"] == "running"
