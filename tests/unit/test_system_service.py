"""``nanoclaw service install|uninstall|status``: the systemd user unit and the macOS LaunchAgent it writes, the
commands it runs and what it tells the user.

This machine has no systemd user manager (PID 1 is not systemd) and no launchd, so ``systemctl``, ``loginctl`` and
``launchctl`` are fakes on ``PATH`` (tests/fakes/service_tools.py) that keep a model of the manager's state; the unit
file itself is checked by systemd's own parser (``systemd-analyze verify``) where it is installed.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nanoclaw_app.cli import main
from nanoclaw_app.paths import Paths
from nanoclaw_app.runfile import write_run_file
from nanoclaw_app.system_service import AGENT_LABEL, service_command, service_main
from tests.fakes.service_tools import calls, install_fakes, set_state, state


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fakes first on PATH, a home for the user ``alice``."""
    folder = install_fakes(tmp_path / "fake-bin")
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HOME", str(tmp_path / "alice"))
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("LOGNAME", "alice")
    return folder


def unit_file(tmp_path: Path) -> Path:
    return tmp_path / "xdg-config" / "systemd" / "user" / "nanoclaw.service"


def keys(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_install_writes_a_unit_that_runs_serve_enables_it_and_explains_lingering(
    tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["service", "install"]) == 0
    out = capsys.readouterr().out
    unit = keys(unit_file(tmp_path).read_text())
    assert unit["ExecStart"] == [f'"{sys.executable}" "-m" "nanoclaw_app" "serve"']
    assert f'"NANOCLAW_HOME={tmp_path / "home"}"' in unit["Environment"]
    assert unit["WantedBy"] == ["default.target"]
    assert unit["Restart"] == ["on-failure"]
    assert calls(tools) == [
        "systemctl --user daemon-reload",
        "systemctl --user is-active nanoclaw.service",
        "systemctl --user enable --now nanoclaw.service",
        "loginctl show-user alice --property=Linger --value",
    ]
    assert state(tools)["active"] is True
    assert "enabled and running now" in out
    assert "loginctl enable-linger alice" in out  # lingering is off: how to keep it running without a login


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd's unit parser is not installed")
def test_the_unit_passes_systemds_own_check_with_awkward_paths(
    tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    odd_home = tmp_path / "my data 100%" / "nano$claw"
    monkeypatch.setenv("NANOCLAW_HOME", str(odd_home))
    monkeypatch.setenv("NANOCLAW_CONFIG_DIR", str(tmp_path / "cfg 50%"))
    assert main(["service", "install"]) == 0
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    check = subprocess.run(
        ["systemd-analyze", "--user", "verify", str(unit_file(tmp_path))],
        capture_output=True, text=True, check=False, env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
    )
    assert check.returncode == 0, check.stderr
    assert check.stderr.strip() == ""  # no unknown key, no path refused, the program exists
    text = unit_file(tmp_path).read_text()
    assert f'"NANOCLAW_HOME={tmp_path}/my data 100%%/nano$$claw"' in text  # systemd reads it back as the real path
    assert f"EnvironmentFile=-{tmp_path}/cfg 50%%/service.env" in text


def test_status_says_installed_enabled_running_and_lingering_in_words(
    tools: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["service", "install"])
    capsys.readouterr()
    assert main(["service", "status"]) == 0
    out = capsys.readouterr().out
    assert "Installed: yes" in out
    assert "Starts by itself: yes (enabled)." in out
    assert "Running: yes (process 4242)." in out
    assert "Runs while you are logged out: no." in out

    set_state(tools, active=False, linger=True)
    assert main(["service", "status"]) == 3
    out = capsys.readouterr().out
    assert "Running: no (inactive)" in out
    assert "Runs while you are logged out: yes (lingering is on)." in out


def test_status_when_nothing_is_installed_says_how_to_install(tools: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["service", "status"]) == 3
    assert "not installed" in capsys.readouterr().out
    assert calls(tools) == []


def test_install_linger_turns_lingering_on_or_says_why_not(tools: Path, capsys: pytest.CaptureFixture[str]) -> None:
    set_state(tools, linger_allowed=False)
    assert main(["service", "install", "--linger"]) == 0
    out = capsys.readouterr().out
    assert "Lingering could not be turned on (Could not enable linger: Access denied)" in out
    assert "loginctl enable-linger alice" in out

    set_state(tools, linger_allowed=True)
    assert main(["service", "install", "--linger"]) == 0
    assert "Lingering is now on" in capsys.readouterr().out
    assert state(tools)["linger"] is True
    assert "loginctl enable-linger alice" in calls(tools)


def test_install_does_not_start_a_second_nanoclaw_on_the_same_data(
    tools: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = Paths.from_env()
    paths.ensure()
    write_run_file(paths, "http://127.0.0.1:8765/")  # this test's process stands in for the running window
    assert main(["service", "install"]) == 0
    out = capsys.readouterr().out
    assert "systemctl --user enable nanoclaw.service" in calls(tools)
    assert not state(tools).get("active")
    assert f"another NanoClaw (process {os.getpid()})" in out


def test_installing_again_restarts_the_running_service_with_the_new_unit(
    tools: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["service", "install"])
    paths = Paths.from_env()
    paths.ensure()
    write_run_file(paths, "http://127.0.0.1:8765/")
    set_state(tools, main_pid=os.getpid())  # the running host is the service itself
    assert main(["service", "install"]) == 0
    assert "has restarted" in capsys.readouterr().out
    assert state(tools)["restarts"] == 1


def test_uninstall_stops_and_removes_the_service_and_keeps_the_data(
    tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["service", "install"])
    data = tmp_path / "home" / "nanoclaw.db"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_bytes(b"the user's chats")
    assert main(["service", "uninstall"]) == 0
    out = capsys.readouterr().out
    assert not unit_file(tmp_path).exists()
    assert state(tools)["active"] is False
    assert state(tools)["loaded"] is None  # systemd re-read its units without ours
    assert data.read_bytes() == b"the user's chats"
    assert "Your data is kept" in out
    assert main(["service", "uninstall"]) == 0
    assert "no NanoClaw service to remove" in capsys.readouterr().out


def test_without_a_systemd_user_manager_it_says_why_and_what_to_do(
    tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_state(tools, reachable=False)
    assert main(["service", "install"]) == 1
    out = capsys.readouterr().out
    assert "systemd could not be reached for your user (Failed to connect to bus: No medium found)" in out
    assert "Log in as alice directly" in out
    assert unit_file(tmp_path).exists()  # ready for the next try from a real login


def test_a_failed_start_points_to_the_journal(tools: Path, capsys: pytest.CaptureFixture[str]) -> None:
    set_state(tools, fail_start=True)
    assert main(["service", "install"]) == 1
    assert "journalctl --user -u nanoclaw" in capsys.readouterr().out


def test_macos_install_writes_a_launch_agent_that_runs_serve_and_loads_it(
    tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert service_main("install", platform="darwin") == 0
    out = capsys.readouterr().out
    plist = tmp_path / "alice" / "Library" / "LaunchAgents" / f"{AGENT_LABEL}.plist"
    agent = plistlib.loads(plist.read_bytes())
    assert agent["Label"] == "io.nanoclaw.service"
    assert agent["ProgramArguments"] == [sys.executable, "-m", "nanoclaw_app", "serve"]
    assert agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}  # launchd starts it again after a crash
    assert agent["EnvironmentVariables"]["NANOCLAW_HOME"] == str(tmp_path / "home")
    assert agent["StandardErrorPath"] == str(tmp_path / "home" / "logs" / "service.out.log")
    uid = os.getuid()
    assert calls(tools) == [
        f"launchctl print gui/{uid}/io.nanoclaw.service",
        f"launchctl enable gui/{uid}/io.nanoclaw.service",
        f"launchctl bootstrap gui/{uid} {plist}",
    ]
    assert "running now" in out
    assert "automatic login" in out  # macOS's answer to lingering

    assert service_main("status", platform="darwin") == 0
    out = capsys.readouterr().out
    assert "Installed: yes" in out
    assert "Starts by itself: yes, at each login." in out
    assert "Running: yes (process 777)." in out


def test_macos_install_again_replaces_the_loaded_agent(tools: Path, capsys: pytest.CaptureFixture[str]) -> None:
    service_main("install", platform="darwin")
    assert service_main("install", platform="darwin") == 0
    assert f"launchctl bootout gui/{os.getuid()}/io.nanoclaw.service" in calls(tools)
    assert state(tools)["agent_loaded"] is True


def test_macos_status_and_uninstall(tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert service_main("status", platform="darwin") == 3
    assert "not installed" in capsys.readouterr().out
    service_main("install", platform="darwin")
    set_state(tools, agent_loaded=False, agent_disabled=True)
    assert service_main("status", platform="darwin") == 3
    out = capsys.readouterr().out
    assert "Starts by itself: no (disabled in launchd)." in out
    assert "Running: no (not loaded)." in out
    set_state(tools, agent_loaded=True)
    assert service_main("uninstall", platform="darwin") == 0
    assert not (tmp_path / "alice" / "Library" / "LaunchAgents" / f"{AGENT_LABEL}.plist").exists()
    assert state(tools)["agent_loaded"] is False
    assert "Your data is kept" in capsys.readouterr().out


def test_macos_without_a_gui_login_says_so(tools: Path, capsys: pytest.CaptureFixture[str]) -> None:
    set_state(tools, bootstrap_fails=True)
    assert service_main("install", platform="darwin") == 1
    assert "Bootstrap failed: 5: Input/output error" in capsys.readouterr().out


def test_windows_points_to_start_at_login_instead(tools: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert service_main("install", platform="win32") == 2
    assert "Start NanoClaw when I log in" in capsys.readouterr().err


def test_the_frozen_app_runs_itself_and_an_appimage_its_own_file() -> None:
    assert service_command(env={}, executable="/usr/lib/nanoclaw/nanoclaw", frozen=True) == [
        "/usr/lib/nanoclaw/nanoclaw", "serve"]
    assert service_command(env={"APPIMAGE": "/home/a/NanoClaw.AppImage"}, executable="/tmp/.mount_x/nanoclaw",
                           frozen=True) == ["/home/a/NanoClaw.AppImage", "serve"]
