r"""Start NanoClaw when I log in: the OS's own autostart entry, written, removed and read back.

- Linux: an XDG autostart entry, ``$XDG_CONFIG_HOME/autostart/nanoclaw.desktop`` (every desktop that follows
  freedesktop.org honours it; GNOME's "Startup Applications" and KDE's "Autostart" show and switch it too).
- macOS: a LaunchAgent, ``~/Library/LaunchAgents/io.nanoclaw.login.plist``, loaded by launchd at the next login.
- Windows: the value ``NanoClaw`` under ``HKCU\Software\Microsoft\Windows\CurrentVersion\Run``.

The entry starts the app with ``--background``: the window stays hidden behind the tray icon, so logging in does not
throw a window at the user. The state shown in the app is always read from the entry itself, so switching it off in
the desktop's own settings shows as off here too.
"""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from nanoclaw_app.paths import CONFIG_ENV, HOME_ENV

BACKGROUND_FLAG = "--background"
DESKTOP_FILE = "nanoclaw.desktop"
LAUNCH_AGENT_LABEL = "io.nanoclaw.login"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE = "NanoClaw"
NOT_WINDOWS = "the Windows registry exists only on Windows"


def launch_command(*, env: Mapping[str, str] | None = None, executable: str | None = None,
                   frozen: bool | None = None) -> list[str]:
    """How to start this very app at login, in the background.

    The frozen binary starts itself (an AppImage by its own file: the running copy lives in a temporary mount); from
    source, this Python runs the package.
    """
    env = os.environ if env is None else env
    executable = executable or sys.executable
    frozen = bool(getattr(sys, "frozen", False)) if frozen is None else frozen
    if frozen:
        return [env.get("APPIMAGE") or executable, BACKGROUND_FLAG]
    return [executable, "-m", "nanoclaw_app", BACKGROUND_FLAG]


def launch_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables that choose this home, carried into the login start so it opens the same data."""
    env = os.environ if env is None else env
    return {name: env[name] for name in (HOME_ENV, CONFIG_ENV) if env.get(name)}


@dataclass(frozen=True, slots=True)
class AutostartState:
    """What the app shows: on or off, and where the entry lives."""

    supported: bool
    enabled: bool
    where: str


class Autostart(Protocol):
    """One OS's autostart entry."""

    @property
    def where(self) -> str:
        """The file or registry value, for the user and the log."""

    def enabled(self) -> bool:
        """Whether the entry exists and is switched on."""

    def enable(self, command: Sequence[str], env: Mapping[str, str]) -> None:
        """Write the entry (replacing an older one)."""

    def disable(self) -> None:
        """Remove the entry (nothing to do when there is none)."""


# ---------------------------------------------------------------------------------------------------- Linux (XDG)


def _desktop_quote(arg: str) -> str:
    """One argument of a desktop entry's ``Exec``: quoted, with the spec's escapes (and ``%`` doubled)."""
    inner = "".join("\\" + ch if ch in '"`$\\' else ch for ch in arg).replace("%", "%%")
    # The key file format unescapes backslashes once more before the Exec rules apply.
    return '"' + inner.replace("\\", "\\\\") + '"'


class XdgAutostart:
    """``~/.config/autostart/nanoclaw.desktop``."""

    def __init__(self, config_home: Path) -> None:
        self.path = config_home / "autostart" / DESKTOP_FILE

    @classmethod
    def for_user(cls, env: Mapping[str, str] | None = None, home: Path | None = None) -> XdgAutostart:
        """The user's entry (``XDG_CONFIG_HOME`` when set, else ``~/.config``)."""
        env = os.environ if env is None else env
        config = env.get("XDG_CONFIG_HOME")
        return cls(Path(config) if config and Path(config).is_absolute() else (home or Path.home()) / ".config")

    @property
    def where(self) -> str:
        """The entry's file."""
        return str(self.path)

    def enabled(self) -> bool:
        """There, and not switched off by the desktop's settings (``Hidden`` or GNOME's own key)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
        keys = _desktop_entry_keys(text)
        return keys.get("Hidden", "false") != "true" and keys.get("X-GNOME-Autostart-enabled", "true") != "false"

    def enable(self, command: Sequence[str], env: Mapping[str, str]) -> None:
        """Write the entry; ``env`` (a chosen home) goes in front through ``env``, as the spec has no other way."""
        prefix = ["env", *(f"{name}={value}" for name, value in sorted(env.items()))] if env else []
        exec_line = " ".join(_desktop_quote(arg) for arg in [*prefix, *command])
        text = "\n".join([
            "[Desktop Entry]",
            "Type=Application",
            "Name=NanoClaw",
            "Comment=Your personal AI assistant; keeps answering your phone chats in the background",
            f"Exec={exec_line}",
            "Icon=nanoclaw",
            "Terminal=false",
            "Categories=Network;Chat;",
            "X-GNOME-Autostart-enabled=true",
            "",
        ])
        _write_atomically(self.path, text.encode("utf-8"))

    def disable(self) -> None:
        """Remove the entry (a desktop's own copy elsewhere is not ours to touch)."""
        self.path.unlink(missing_ok=True)


def _desktop_entry_keys(text: str) -> dict[str, str]:
    """The keys of the ``[Desktop Entry]`` group (other groups and comments skipped)."""
    keys: dict[str, str] = {}
    group = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1]
        elif group == "Desktop Entry" and "=" in line:
            key, value = line.split("=", 1)
            keys[key.strip()] = value.strip()
    return keys


# ---------------------------------------------------------------------------------------------------- macOS


class LaunchAgent:
    """``~/Library/LaunchAgents/io.nanoclaw.login.plist``: run once at each login, in the user's GUI session."""

    def __init__(self, home: Path) -> None:
        self.path = home / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"

    @property
    def where(self) -> str:
        """The agent's file."""
        return str(self.path)

    def enabled(self) -> bool:
        """There, ours, and not marked ``Disabled``."""
        try:
            data = plistlib.loads(self.path.read_bytes())
        except (OSError, ValueError, plistlib.InvalidFileException):
            return False
        return isinstance(data, dict) and data.get("Label") == LAUNCH_AGENT_LABEL and data.get("Disabled") is not True

    def enable(self, command: Sequence[str], env: Mapping[str, str]) -> None:
        """Write the agent; launchd reads it at the next login (loading it now would start a second app)."""
        agent: dict[str, object] = {
            "Label": LAUNCH_AGENT_LABEL,
            "ProgramArguments": list(command),
            "RunAtLoad": True,
            "ProcessType": "Interactive",
            "LimitLoadToSessionType": "Aqua",  # only a real login with a screen, never an ssh session
        }
        if env:
            agent["EnvironmentVariables"] = dict(env)
        _write_atomically(self.path, plistlib.dumps(agent))

    def disable(self) -> None:
        """Remove the agent's file."""
        self.path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------------- Windows


class Registry(Protocol):
    """The few registry operations the Run key needs (a fake stands in for it in tests off Windows)."""

    def read(self, name: str) -> str | None:
        """The string value, or None when it does not exist."""

    def write(self, name: str, value: str) -> None:
        """Set a string value."""

    def delete(self, name: str) -> None:
        """Delete a value that may not exist."""


class WindowsRunKey:
    r"""``HKCU\...\Run``, value ``NanoClaw``: a command line Windows runs at each login of this user."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @property
    def where(self) -> str:
        """The registry value's full name."""
        return f"HKEY_CURRENT_USER\\{RUN_KEY}\\{RUN_VALUE}"

    def enabled(self) -> bool:
        """The value exists and is not empty."""
        return bool(self.registry.read(RUN_VALUE))

    def enable(self, command: Sequence[str], env: Mapping[str, str]) -> None:
        """Write the command line, quoted as Windows parses it."""
        # The Run key cannot carry environment variables: an install with a chosen home keeps its own start entry.
        self.registry.write(RUN_VALUE, subprocess.list2cmdline(list(command)))

    def disable(self) -> None:
        """Delete the value."""
        self.registry.delete(RUN_VALUE)


class WinRegistry:
    """The real registry (Windows only; elsewhere every call says so)."""

    def read(self, name: str) -> str | None:
        """A value of the Run key, or None."""
        if sys.platform == "win32":
            import winreg

            try:
                with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
                    value, _kind = winreg.QueryValueEx(key, name)
            except FileNotFoundError:
                return None
            return str(value)
        raise OSError(NOT_WINDOWS)

    def write(self, name: str, value: str) -> None:
        """Set a value of the Run key (creating the key if a fresh profile has none)."""
        if sys.platform == "win32":
            import winreg

            with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
                winreg.SetValueEx(key, name, 0, winreg.REG_SZ, value)
            return
        raise OSError(NOT_WINDOWS)

    def delete(self, name: str) -> None:
        """Delete a value of the Run key if it is there."""
        if sys.platform == "win32":
            import winreg

            try:
                with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
                    winreg.DeleteValue(key, name)
            except FileNotFoundError:
                pass
            return
        raise OSError(NOT_WINDOWS)


# ---------------------------------------------------------------------------------------------------- choosing


def autostart_for(platform: str | None = None, *, env: Mapping[str, str] | None = None,
                  home: Path | None = None, registry: Registry | None = None) -> Autostart | None:
    """This OS's autostart entry, or None where the app knows none."""
    platform = platform or sys.platform
    if platform == "darwin":
        return LaunchAgent(home or Path.home())
    if platform == "win32":
        return WindowsRunKey(registry or WinRegistry())
    if platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return XdgAutostart.for_user(env, home)
    return None


def read_state(entry: Autostart | None) -> AutostartState:
    """On or off as the OS has it."""
    if entry is None:
        return AutostartState(supported=False, enabled=False, where="")
    return AutostartState(supported=True, enabled=entry.enabled(), where=entry.where)


def set_enabled(entry: Autostart, enabled: bool, *, env: Mapping[str, str] | None = None) -> AutostartState:
    """Switch it on (for this app, this home) or off; returns the state read back from the entry."""
    if enabled:
        entry.enable(launch_command(env=env), launch_env(env))
    else:
        entry.disable()
    return read_state(entry)


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace the file in one step, so a login never reads half an entry (it names a program, nothing secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    tmp.replace(path)
