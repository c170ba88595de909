"""Running Podman's installer for the user, and finding Podman afterwards.

The installer is the official one with its own window (the user sees what is installed and Windows or macOS asks
for permission), so NanoClaw only starts it and waits. A freshly installed Podman is not on this process's PATH
(PATH was read when the app started), so it is also looked for where its installers put it.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from nanoclaw_app.engine import proc

log = logging.getLogger(__name__)

INSTALL_TIMEOUT = 3600.0
"""The user may leave the installer's window open for a long time."""
CANCELLED = 1602
"""Windows Installer: the user cancelled."""
REBOOT = 3010
"""Windows Installer: installed, restart needed."""
BUSY = 1618
"""Windows Installer: another installation is running."""
MACOS_PODMAN = Path("/opt/podman/bin/podman")
"""Where Podman's macOS package installs the program."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the installer ended: ``installed``, ``cancelled`` or ``failed``, in plain words for ``failed``."""

    status: str
    reboot_needed: bool = False
    problem: str = ""
    fix: str = ""


async def run_windows(setup: Path) -> Outcome:
    """``setup.exe /install /norestart`` (Podman's WiX bundle), read by its exit code."""
    try:
        result = await proc.run([str(setup), "/install", "/norestart"], limit=INSTALL_TIMEOUT, kill_on_cancel=False)
    except OSError as err:
        return Outcome("failed", problem=f"Podman's installer could not be started ({err})",
                       fix="try again; if Windows blocked it, allow it in Windows Security")
    except TimeoutError:
        return Outcome("failed", problem="Podman's installer did not finish within an hour",
                       fix="finish or close its window, then click “Install Podman” again")
    if result.code not in (0, REBOOT, CANCELLED):
        log.warning("Podman's installer ended with code %d: %s", result.code, result.text[-400:])
    return windows_outcome(result.code)


def windows_outcome(code: int) -> Outcome:
    """What a Windows Installer exit code means for the user."""
    if code in (0, REBOOT):
        return Outcome("installed", reboot_needed=code == REBOOT)
    if code == CANCELLED:
        return Outcome("cancelled")
    if code == BUSY:
        return Outcome("failed", problem="another installation is running on this computer",
                       fix="wait until it has finished, then click “Install Podman” again")
    return Outcome("failed", problem=f"Podman's installer stopped with error code {code}",
                   fix="click “Install Podman” to try again, or install Podman yourself from https://podman.io")


async def run_macos(package: Path, *, opener: str = "open", podman: Path = MACOS_PODMAN) -> Outcome:
    """Open the ``.pkg`` in macOS's Installer and wait for its window to close (``open -W``).

    Installer's exit code says nothing (closing it early also ends with 0), so success is Podman being where the
    package puts it.
    """
    try:
        result = await proc.run([opener, "-W", str(package)], limit=INSTALL_TIMEOUT, kill_on_cancel=False)
    except OSError as err:
        return Outcome("failed", problem=f"macOS's Installer could not be opened ({err})",
                       fix="open the downloaded package yourself, or install Podman from https://podman.io")
    except TimeoutError:
        return Outcome("failed", problem="macOS's Installer did not finish within an hour",
                       fix="finish or close its window, then click “Install Podman” again")
    if _is_program(podman):
        return Outcome("installed")
    if result.code != 0:
        return Outcome("failed", problem=f"macOS's Installer could not open the package: {result.text[-300:]}",
                       fix="click “Install Podman” to try again, or install Podman yourself from https://podman.io")
    return Outcome("cancelled")


def find_podman(platform: str, env: Mapping[str, str] | None = None) -> str | None:
    """The ``podman`` program: on PATH, else where Podman's installers (or Homebrew) put it."""
    env = os.environ if env is None else env
    found = shutil.which("podman", path=env.get("PATH"))
    if found:
        return found
    for candidate in _known_places(platform, env):
        if _is_program(candidate):
            return str(candidate)
    return None


def _known_places(platform: str, env: Mapping[str, str]) -> list[Path]:
    if platform == "darwin":
        return [MACOS_PODMAN, Path("/opt/homebrew/bin/podman"), Path("/usr/local/bin/podman")]
    if platform == "win32":
        places = []
        for var, tail in (("ProgramFiles", ("RedHat", "Podman")), ("LOCALAPPDATA", ("Programs", "Podman")),
                          ("LOCALAPPDATA", ("Programs", "RedHat", "Podman"))):
            base = env.get(var)
            if base:
                places.append(Path(base).joinpath(*tail, "podman.exe"))
        return places
    return []


def _is_program(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
