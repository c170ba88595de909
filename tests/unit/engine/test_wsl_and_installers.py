"""Installing and updating WSL, and running Podman's installers, against fakes of `wsl.exe`, the setup program and
macOS's `open`: restart needed, cancelled and refused are told apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from nanoclaw_app.engine import installer, wsl
from tests.fakes import os_tools


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return os_tools.windows_root(tmp_path / "Windows", wsl_installed=False)


async def test_installing_wsl_reports_the_restart_it_needs(root: Path) -> None:
    change = await wsl.install(root / "System32" / "wsl.exe")
    assert change.ok is True
    assert change.reboot_needed is True
    assert "wsl.exe --install --no-distribution" in os_tools.calls(root)
    assert (await wsl.state(root / "System32" / "wsl.exe")).reboot_needed is True


async def test_installing_wsl_that_the_user_refused_says_so(root: Path) -> None:
    os_tools.set_state(root, wsl_install="refused")
    change = await wsl.install(root / "System32" / "wsl.exe")
    assert change.ok is False
    assert "canceled by the user" in change.message


async def test_updating_wsl_falls_back_to_the_web_download_without_the_store(root: Path) -> None:
    os_tools.set_state(root, wsl_installed=True, wsl_version="1.1.3.0", wsl_update="store_blocked")
    change = await wsl.update(root / "System32" / "wsl.exe")
    assert change.ok is True
    assert os_tools.calls(root)[-3:-1] == ["wsl.exe --update", "wsl.exe --update --web-download"]
    assert (await wsl.state(root / "System32" / "wsl.exe")).version == "2.3.26.0"


async def test_no_wsl_program_at_all_is_not_installed(tmp_path: Path) -> None:
    state = await wsl.state(tmp_path / "System32" / "wsl.exe")
    assert state.installed is False


def _setup(folder: Path, code: int) -> Path:
    path = folder / "podman-installer-windows-amd64.exe"
    path.write_bytes(os_tools.windows_installer(folder / "Podman" / "podman.exe", folder, code))
    path.chmod(0o700)
    return path


async def test_the_windows_installer_is_run_to_install_without_restarting(tmp_path: Path) -> None:
    outcome = await installer.run_windows(_setup(tmp_path, 0))
    assert outcome.status == "installed"
    assert os_tools.calls(tmp_path) == ["setup /install /norestart"]
    assert (tmp_path / "Podman" / "podman.exe").exists()
    assert (await installer.run_windows(_setup(tmp_path, 1))).status == "failed"


@pytest.mark.parametrize(("code", "status", "reboot", "words"), [
    (0, "installed", False, ""), (3010, "installed", True, ""), (1602, "cancelled", False, ""),
    (1618, "failed", False, "another installation is running"), (1603, "failed", False, "error code 1603"),
])
def test_windows_installer_exit_codes_are_read_for_the_user(code: int, status: str, reboot: bool,
                                                            words: str) -> None:
    """Windows Installer's codes (above 255, so a fake on Linux cannot return them)."""
    outcome = installer.windows_outcome(code)
    assert outcome.status == status
    assert outcome.reboot_needed is reboot
    assert words in outcome.problem


async def test_the_macos_package_counts_as_installed_only_when_podman_is_there(tmp_path: Path) -> None:
    podman_at = tmp_path / "opt" / "podman" / "bin" / "podman"
    opener = os_tools.macos_open(tmp_path / "bin" / "open", podman_at, tmp_path)
    package = tmp_path / "podman-installer-macos-universal.pkg"
    package.write_bytes(b"xar!")
    os_tools.set_state(tmp_path, pkg_cancel=True)
    assert (await installer.run_macos(package, opener=str(opener), podman=podman_at)).status == "cancelled"
    os_tools.set_state(tmp_path, pkg_cancel=False)
    assert (await installer.run_macos(package, opener=str(opener), podman=podman_at)).status == "installed"
    assert os_tools.calls(tmp_path) == [f"open -W {package}"] * 2


def test_a_podman_installed_after_the_app_started_is_found_where_the_installer_put_it(tmp_path: Path) -> None:
    program_files = tmp_path / "Program Files"
    exe = program_files / "RedHat" / "Podman" / "podman.exe"
    env = {"PATH": str(tmp_path / "empty"), "ProgramFiles": str(program_files)}
    assert installer.find_podman("win32", env) is None
    exe.parent.mkdir(parents=True)
    exe.write_text("")
    exe.chmod(0o755)
    assert installer.find_podman("win32", env) == str(exe)
    assert installer.find_podman("linux", env) is None
