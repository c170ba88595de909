"""Windows and macOS preflight: each problem a person can have is said in plain words with the one fix that helps,
read from fake `wsl.exe` and `powershell.exe` the way the app runs them on Windows."""

from __future__ import annotations

from pathlib import Path

import pytest

from nanoclaw_app.engine import wsl
from nanoclaw_app.engine.facts import HostFacts
from nanoclaw_app.engine.preflight import blocker, macos_checks, windows_checks
from nanoclaw_app.engine.proc import decode
from tests.fakes import os_tools

WIN11 = HostFacts("win32", "AMD64", "10.0.22631", 16 * 1024**3)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return os_tools.windows_root(tmp_path / "Windows")


async def test_a_ready_windows_passes_every_check(root: Path) -> None:
    found = await windows_checks(WIN11, root)
    assert [f.key for f in found] == ["arch", "windows_build", "memory", "wsl"]
    assert all(f.ok for f in found)
    assert found[-1].title == "Windows Subsystem for Linux (WSL 2.2.4.0)"
    assert blocker(found) is None


async def test_32_bit_windows_cannot_run_it_and_nothing_else_is_asked(root: Path) -> None:
    found = await windows_checks(HostFacts("win32", "x86", "10.0.19045"), root)
    first = blocker(found)
    assert first is not None
    assert first.key == "arch"
    assert "needs 64-bit Windows" in first.problem
    assert first.action == ""
    assert os_tools.calls(root) == []


async def test_old_windows_build_points_to_windows_update(root: Path) -> None:
    first = blocker(await windows_checks(HostFacts("win32", "AMD64", "10.0.18363"), root))
    assert first is not None
    assert "build 18363" in first.problem
    assert "19043" in first.problem
    assert first.action == "open_windows_update"


async def test_virtualisation_off_in_the_firmware_says_how_to_turn_it_on(root: Path) -> None:
    os_tools.set_state(root, hypervisor=False, firmware=False)
    first = blocker(await windows_checks(WIN11, root))
    assert first is not None
    assert first.key == "virtualisation"
    assert "BIOS/UEFI" in first.problem
    assert "SVM Mode" in first.fix
    assert first.action == ""  # only the person at the computer can do this


async def test_a_running_hypervisor_means_virtualisation_is_on(root: Path) -> None:
    os_tools.set_state(root, hypervisor=True, firmware=False)  # what Windows reports once Hyper-V runs
    assert blocker(await windows_checks(WIN11, root)) is None


async def test_missing_wsl_offers_to_install_it(root: Path) -> None:
    os_tools.set_state(root, wsl_installed=False)
    first = blocker(await windows_checks(WIN11, root))
    assert first is not None
    assert first.action == "install_wsl"
    assert "is not installed" in first.problem
    assert "needs a restart" in first.fix


async def test_virtual_machine_platform_off_offers_the_wsl_install_that_turns_it_on(root: Path) -> None:
    os_tools.set_state(root, vmp_on=False)
    first = blocker(await windows_checks(WIN11, root))
    assert first is not None
    assert first.action == "install_wsl"
    assert "Virtual Machine Platform" in first.problem


async def test_wsl_waiting_for_a_restart_offers_the_restart(root: Path) -> None:
    os_tools.set_state(root, wsl_reboot=True)
    first = blocker(await windows_checks(WIN11, root))
    assert first is not None
    assert first.action == "restart_windows"
    assert "has to restart" in first.problem


async def test_old_wsl_offers_the_update(root: Path) -> None:
    os_tools.set_state(root, wsl_version="1.2.4.0")
    first = blocker(await windows_checks(WIN11, root))
    assert first is not None
    assert first.action == "update_wsl"
    assert "WSL 1.2.4.0 is installed, but Podman needs WSL 1.2.5 or newer" in first.problem


async def test_little_memory_is_a_warning_not_a_stop(root: Path) -> None:
    found = await windows_checks(HostFacts("win32", "ARM64", "10.0.22631", 4 * 1024**3), root)
    memory = next(f for f in found if f.key == "memory")
    assert memory.ok is False
    assert memory.blocking is False
    assert "4 GB" in memory.problem
    assert blocker(found) is None


@pytest.mark.parametrize(("version", "ok"), [("12.7.4", False), ("13.0", True), ("15.1", True)])
def test_macos_version(version: str, ok: bool) -> None:
    found = macos_checks(HostFacts("darwin", "arm64", version, 8 * 1024**3))
    assert (blocker(found) is None) is ok
    if not ok:
        assert found[0].action == "open_software_update"
        assert f"macOS {version}" in found[0].problem


@pytest.mark.parametrize(("text", "version"), [
    ("WSL version: 2.2.4.0\nKernel version: 5.15.153.1-2\n", "2.2.4.0"),
    ("Versione WSL: 1.2.5.0\nVersione kernel: 5.15.90.1\n", "1.2.5.0"),
    ("WSL 版本： 2.0.14.0\n内核版本： 5.15.133.1-1\n", "2.0.14.0"),
    ("WSL-Version: 2.3.26.0\n", "2.3.26.0"),
])
def test_wsl_version_is_read_in_any_language(text: str, version: str) -> None:
    assert wsl.parse_version(text) == version


def test_wsl_output_in_utf16_is_read() -> None:
    text = "WSL version: 1.2.5.0\r\n"
    assert decode(text.encode("utf-16-le")) == text
    assert decode(b"\xff\xfe" + text.encode("utf-16-le")) == text
    assert wsl.parse_version(decode(text.encode("utf-16-le"))) == "1.2.5.0"


async def test_wsl_that_prints_utf16_despite_wsl_utf8_is_understood(root: Path) -> None:
    os_tools.set_state(root, wsl_utf16=True, wsl_version="1.2.5.0")
    state = await wsl.state(root / "System32" / "wsl.exe")
    assert state.installed is True
    assert state.version == "1.2.5.0"
    assert state.too_old is False
