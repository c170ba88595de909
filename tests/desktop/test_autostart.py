"""Start at login: the XDG entry, the LaunchAgent and the Run key are written, read back and removed; the API and the
Settings page and the wizard's last step switch the real entry."""

from __future__ import annotations

import plistlib
from pathlib import Path

import httpx
import pytest

from nanoclaw_app.desktop.autostart import (
    LAUNCH_AGENT_LABEL,
    RUN_VALUE,
    LaunchAgent,
    WindowsRunKey,
    XdgAutostart,
    autostart_for,
    launch_command,
    launch_env,
    read_state,
    set_enabled,
)


class FakeRegistry:
    """The HKCU Run key as a dict (the real registry exists only on Windows)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def read(self, name: str) -> str | None:
        return self.values.get(name)

    def write(self, name: str, value: str) -> None:
        self.values[name] = value

    def delete(self, name: str) -> None:
        self.values.pop(name, None)


def desktop_keys(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "[Desktop Entry]"
    return dict(line.split("=", 1) for line in lines[1:] if line)


def exec_argv(value: str) -> list[str]:
    """Read an Exec value as the desktop entry spec says: undo the key file's escapes, then split quoted arguments
    (inside quotes a backslash escapes ``"``, `````, ``$`` and itself), then ``%%`` is a ``%``."""
    value = value.replace("\\\\", "\\")
    args: list[str] = []
    current: list[str] | None = None
    quoted = escaped = False
    for ch in value:
        if escaped:
            assert ch in '"`$\\', f"not an Exec escape: {ch!r}"
            current = (current or []) + [ch]
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
            current = current or []
        elif ch == " " and not quoted:
            if current is not None:
                args.append("".join(current))
            current = None
        else:
            assert quoted or ch not in '"`$\\', f"a reserved character outside quotes: {ch!r}"
            current = (current or []) + [ch]
    assert not quoted, "an unclosed quote"
    if current is not None:
        args.append("".join(current))
    return [arg.replace("%%", "%") for arg in args]


# ------------------------------------------------------------------------------------------------ the command


def test_the_login_start_runs_this_app_in_the_background() -> None:
    assert launch_command(env={}, executable="/opt/nanoclaw/nanoclaw", frozen=True) == [
        "/opt/nanoclaw/nanoclaw", "--background"]
    assert launch_command(env={"APPIMAGE": "/home/a/Apps/NanoClaw.AppImage"}, executable="/tmp/.mount_x/nanoclaw",
                          frozen=True) == ["/home/a/Apps/NanoClaw.AppImage", "--background"]
    assert launch_command(env={}, executable="/usr/bin/python3", frozen=False) == [
        "/usr/bin/python3", "-m", "nanoclaw_app", "--background"]
    assert launch_env({"NANOCLAW_HOME": "/data/nc", "PATH": "/bin"}) == {"NANOCLAW_HOME": "/data/nc"}


# ------------------------------------------------------------------------------------------------ Linux


def test_the_xdg_entry_is_written_read_back_and_removed(tmp_path: Path) -> None:
    entry = XdgAutostart.for_user({"XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    assert entry.path == tmp_path / "cfg" / "autostart" / "nanoclaw.desktop"
    assert read_state(entry).enabled is False
    odd = str(tmp_path / 'My "Apps" $HOME 100% \\ nano')
    entry.enable([odd, "--background"], {"NANOCLAW_HOME": "/data/nano claw"})
    keys = desktop_keys(entry.path)
    assert keys["Type"] == "Application"
    assert keys["Name"] == "NanoClaw"
    assert keys["Terminal"] == "false"
    assert exec_argv(keys["Exec"]) == ["env", "NANOCLAW_HOME=/data/nano claw", odd, "--background"]
    assert read_state(entry).enabled is True
    entry.disable()
    assert not entry.path.exists()
    assert read_state(entry).enabled is False
    entry.disable()  # nothing to remove is fine


@pytest.mark.parametrize("switch", ["Hidden=true", "X-GNOME-Autostart-enabled=false"])
def test_an_entry_switched_off_by_the_desktop_reads_as_off(tmp_path: Path, switch: str) -> None:
    entry = XdgAutostart(tmp_path)
    entry.enable(["/usr/bin/nanoclaw", "--background"], {})
    entry.path.write_text(entry.path.read_text(encoding="utf-8").replace("X-GNOME-Autostart-enabled=true", switch),
                          encoding="utf-8")
    assert read_state(entry).enabled is False


def test_without_xdg_config_home_the_entry_goes_to_dot_config(tmp_path: Path) -> None:
    assert XdgAutostart.for_user({}, tmp_path).path == tmp_path / ".config" / "autostart" / "nanoclaw.desktop"
    assert XdgAutostart.for_user({"XDG_CONFIG_HOME": "relative/dir"}, tmp_path).path.is_relative_to(tmp_path)


# ------------------------------------------------------------------------------------------------ macOS


def test_the_launch_agent_runs_the_app_at_login_in_the_gui_session(tmp_path: Path) -> None:
    entry = autostart_for("darwin", home=tmp_path)
    assert isinstance(entry, LaunchAgent)
    assert read_state(entry).enabled is False
    entry.enable(["/Applications/NanoClaw.app/Contents/MacOS/nanoclaw", "--background"],
                 {"NANOCLAW_HOME": "/Users/a/nc"})
    path = tmp_path / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"
    agent = plistlib.loads(path.read_bytes())
    assert agent == {
        "Label": LAUNCH_AGENT_LABEL,
        "ProgramArguments": ["/Applications/NanoClaw.app/Contents/MacOS/nanoclaw", "--background"],
        "RunAtLoad": True,
        "ProcessType": "Interactive",
        "LimitLoadToSessionType": "Aqua",
        "EnvironmentVariables": {"NANOCLAW_HOME": "/Users/a/nc"},
    }
    assert read_state(entry) == read_state(LaunchAgent(tmp_path))
    assert read_state(entry).enabled is True
    entry.disable()
    assert not path.exists()
    assert read_state(entry).enabled is False


# ------------------------------------------------------------------------------------------------ Windows


def test_the_run_key_holds_a_quoted_command_line() -> None:
    registry = FakeRegistry()
    entry = autostart_for("win32", registry=registry)
    assert isinstance(entry, WindowsRunKey)
    assert read_state(entry).enabled is False
    entry.enable([r"C:\Users\Ann Lee\AppData\Local\Programs\NanoClaw\nanoclaw.exe", "--background"], {})
    assert registry.values == {
        RUN_VALUE: r'"C:\Users\Ann Lee\AppData\Local\Programs\NanoClaw\nanoclaw.exe" --background'}
    assert read_state(entry).where == r"HKEY_CURRENT_USER\Software\Microsoft\Windows\CurrentVersion\Run\NanoClaw"
    assert read_state(entry).enabled is True
    entry.disable()
    assert registry.values == {}
    assert read_state(entry).enabled is False


def test_an_unknown_system_has_no_start_at_login() -> None:
    assert autostart_for("plan9") is None
    assert read_state(None).supported is False


def test_set_enabled_writes_this_apps_command(tmp_path: Path) -> None:
    entry = XdgAutostart(tmp_path)
    state = set_enabled(entry, True, env={"NANOCLAW_HOME": "/data/nc"})
    assert state.enabled is True
    assert exec_argv(desktop_keys(entry.path)["Exec"])[:2] == ["env", "NANOCLAW_HOME=/data/nc"]
    assert exec_argv(desktop_keys(entry.path)["Exec"])[-1] == "--background"
    assert set_enabled(entry, False).enabled is False


# ------------------------------------------------------------------------------------------------ the API


async def test_the_api_switches_the_real_entry_and_reads_it_back(client: httpx.AsyncClient, tmp_path: Path) -> None:
    entry = tmp_path / "xdg-config" / "autostart" / "nanoclaw.desktop"  # XDG_CONFIG_HOME of every test
    assert (await client.get("/api/autostart")).json() == {"supported": True, "enabled": False, "where": str(entry)}
    on = await client.put("/api/autostart", json={"enabled": True})
    assert on.status_code == 200, on.text
    assert on.json()["enabled"] is True
    assert exec_argv(desktop_keys(entry)["Exec"])[-1] == "--background"
    # Switched off in the desktop's own settings: the app shows it off.
    entry.write_text(entry.read_text(encoding="utf-8") + "Hidden=true\n", encoding="utf-8")
    assert (await client.get("/api/autostart")).json()["enabled"] is False
    off = await client.put("/api/autostart", json={"enabled": False})
    assert off.json()["enabled"] is False
    assert not entry.exists()


async def test_a_folder_that_cannot_be_written_is_said_in_plain_words(client: httpx.AsyncClient,
                                                                     tmp_path: Path) -> None:
    (tmp_path / "xdg-config").mkdir(exist_ok=True)
    (tmp_path / "xdg-config" / "autostart").write_text("a file where the folder should be", encoding="utf-8")
    response = await client.put("/api/autostart", json={"enabled": True})
    assert response.status_code == 400
    assert response.json()["error"].startswith("Could not change the start at login")
