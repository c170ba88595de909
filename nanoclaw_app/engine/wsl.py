"""Windows Subsystem for Linux: is it there, is it new enough, and installing or updating it for the user.

Podman's Windows machine is a WSL 2 distribution. WSL releases before 1.2.5 break its networking, and a WSL that was
just installed works only after a restart, which ``wsl`` reports with the ``WSL_E_WSL_OPTIONAL_COMPONENT_REQUIRED``
error code (the code is the same in every language; the sentences around it are not).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from nanoclaw_app.engine import proc

log = logging.getLogger(__name__)

MIN_VERSION = (1, 2, 5)
ENV = {"WSL_UTF8": "1"}
CHECK_TIMEOUT = 60.0
INSTALL_TIMEOUT = 1800.0
"""Installing downloads WSL and waits for the user to allow it (a Windows permission prompt)."""
REBOOT_CODE = "WSL_E_WSL_OPTIONAL_COMPONENT_REQUIRED"
RESTART_EXIT = 3010
"""Windows installers' “done, restart needed” exit code."""
_REBOOT_WORDS = ("reboot", "restart", "neustart", "redémarr", "reinici", "riavvi")
_COLONS = ":\uff1a\ufe55"
"""The colon, and the full-width and small colons WSL prints in Chinese and Japanese."""
_VERSION = re.compile(r"\d+(?:\.\d+){1,3}")


@dataclass(frozen=True, slots=True)
class WslState:
    """What the preflight needs to know about WSL."""

    installed: bool
    version: str = ""
    reboot_needed: bool = False
    detail: str = ""
    """What ``wsl`` printed when it did not answer as expected (for the log and a failure report)."""

    @property
    def too_old(self) -> bool:
        """Installed, but older than the WSL that Podman needs."""
        return bool(self.version) and version_tuple(self.version) < MIN_VERSION


def version_tuple(text: str) -> tuple[int, ...]:
    """``1.2.5.0`` → (1, 2, 5, 0); anything unreadable is (0,)."""
    match = _VERSION.search(text)
    return tuple(int(part) for part in match.group(0).split(".")) if match else (0,)


def parse_version(text: str) -> str:
    """WSL's own version from ``wsl --version`` output, in any language (its first line is WSL's version)."""
    for line in text.splitlines():
        line = line.strip()
        cut = min((i for i in (line.find(c) for c in _COLONS) if i >= 0), default=-1)
        if cut < 0:
            continue
        label, value = line[:cut], line[cut + 1:]
        match = _VERSION.search(value)
        if match and "wsl" in label.lower():
            return match.group(0)
    first = next((line for line in text.splitlines() if line.strip()), "")
    match = _VERSION.search(first)
    return match.group(0) if match else ""


async def state(wsl: Path) -> WslState:
    """Whether WSL is installed, its version, and whether Windows must restart first; never raises."""
    if not _present(wsl):
        return WslState(installed=False, detail=f"{wsl} does not exist")
    try:
        result = await proc.run([str(wsl), "--version"], limit=CHECK_TIMEOUT, env=ENV)
    except (OSError, TimeoutError) as err:
        log.warning("`wsl --version` failed: %s", err)
        return WslState(installed=False, detail=str(err))
    if result.code == 0:
        version = parse_version(result.out)
        if version:
            return WslState(installed=True, version=version)
    if await _reboot_pending(wsl):
        return WslState(installed=True, reboot_needed=True)
    # The Windows-inbox wsl.exe (WSL not installed, or too old to know --version) ends up here.
    return WslState(installed=False, detail=result.text[-400:])


async def _reboot_pending(wsl: Path) -> bool:
    try:
        result = await proc.run([str(wsl), "--list"], limit=CHECK_TIMEOUT, env=ENV)
    except (OSError, TimeoutError) as err:
        log.warning("`wsl --list` failed: %s", err)
        return False
    return REBOOT_CODE in result.text


@dataclass(frozen=True, slots=True)
class WslChange:
    """How installing or updating WSL ended."""

    ok: bool
    reboot_needed: bool = False
    message: str = ""


async def install(wsl: Path) -> WslChange:
    """``wsl --install --no-distribution``: WSL and the Virtual Machine Platform, without a Linux distribution.

    Windows asks the user for permission itself. Success usually means “restart Windows”, said in words that depend
    on the language, so the state is read again afterwards as well.
    """
    result = await proc.run([str(wsl), "--install", "--no-distribution"], limit=INSTALL_TIMEOUT, env=ENV,
                            kill_on_cancel=False)
    return await _outcome(wsl, result)


async def update(wsl: Path) -> WslChange:
    """``wsl --update``, and from GitHub (``--web-download``) when the Microsoft Store is not available."""
    result = await proc.run([str(wsl), "--update"], limit=INSTALL_TIMEOUT, env=ENV, kill_on_cancel=False)
    if result.code != 0:
        log.warning("`wsl --update` failed (%d): %s; trying --web-download", result.code, result.text[-300:])
        result = await proc.run([str(wsl), "--update", "--web-download"], limit=INSTALL_TIMEOUT, env=ENV,
                                kill_on_cancel=False)
    return await _outcome(wsl, result)


async def _outcome(wsl: Path, result: proc.Result) -> WslChange:
    text = result.text
    said_restart = result.code == RESTART_EXIT or REBOOT_CODE in text or \
        any(word in text.lower() for word in _REBOOT_WORDS)
    after = await state(wsl)
    if after.reboot_needed or (said_restart and result.code in (0, RESTART_EXIT)):
        return WslChange(ok=True, reboot_needed=True, message=text[-400:])
    if result.code != 0:
        return WslChange(ok=False, message=text[-400:] or f"wsl ended with code {result.code}")
    if not after.installed or after.too_old:
        return WslChange(ok=False, message=after.detail or f"WSL is still {after.version or 'missing'}")
    return WslChange(ok=True, message=text[-400:])


def _present(path: Path) -> bool:
    return path.is_file()
