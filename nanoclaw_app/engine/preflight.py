"""Before installing Podman: can this computer run it, and if not, what exactly must change — in plain words.

These are the checks Podman Desktop learned the hard way (64-bit Windows, build 19043 or newer, enough memory, the
Virtual Machine Platform, WSL 1.2.5 or newer, a restart after installing WSL), each with one action the app can take
for the user where one exists (``install_wsl``, ``update_wsl``, ``restart_windows``, ``open_windows_update``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nanoclaw_app.engine import windows, wsl
from nanoclaw_app.engine.facts import HostFacts

MIN_WINDOWS_BUILD = 19043
"""Windows 10 21H1; WSL 2 as Podman uses it needs this or newer."""
WINDOWS_MEMORY_GB = 6
MIN_MACOS = 13
"""macOS Ventura: Podman's machine boots with Apple's virtualisation framework, which needs it."""
MACOS_MEMORY_GB = 4


@dataclass(frozen=True, slots=True)
class Finding:
    """One check as the wizard shows it: a title, and when it failed, what is wrong and how to fix it."""

    key: str
    ok: bool
    title: str
    problem: str = ""
    fix: str = ""
    action: str = ""
    """What the app can do about it (a button), or empty when only the user can (then the fix says how)."""
    blocking: bool = True
    """False for a warning: setup goes on."""


def blocker(findings: list[Finding]) -> Finding | None:
    """The first failed check that stops the setup."""
    return next((f for f in findings if not f.ok and f.blocking), None)


async def windows_checks(facts: HostFacts, system_root: Path) -> list[Finding]:
    """Windows: 64-bit, build, memory, virtualisation, WSL. Later checks are skipped once an earlier one blocks."""
    found: list[Finding] = []
    if not facts.is_64bit:
        found.append(Finding("arch", False, "64-bit Windows",
                             f"This computer runs {facts.arch} Windows; the Linux system that agents work in needs "
                             "64-bit Windows",
                             "use a computer with 64-bit Windows 10 or 11"))
        return found
    found.append(Finding("arch", True, "64-bit Windows"))
    build = facts.windows_build
    if build is not None and build < MIN_WINDOWS_BUILD:
        found.append(Finding("windows_build", False, "Windows 10 version 21H1 or newer",
                             f"This computer has Windows build {build}; Podman needs build {MIN_WINDOWS_BUILD} "
                             "(Windows 10 version 21H1) or newer",
                             "install the Windows updates (Settings → Windows Update), restart, and open NanoClaw "
                             "again", action="open_windows_update"))
        return found
    found.append(Finding("windows_build", True, "Windows 10 version 21H1 or newer"))
    found.append(_memory(facts, WINDOWS_MEMORY_GB))
    virt = await windows.virtualisation(system_root)
    if virt.firmware_off:
        found.append(Finding("virtualisation", False, "Virtualisation turned on",
                             "Virtualisation is turned off in this computer's firmware (BIOS/UEFI), so no Linux "
                             "system can run",
                             "restart the computer and open its firmware settings (usually F2, F10 or Del while it "
                             "starts), turn on “Intel Virtualization Technology” (VT-x) or “SVM Mode” (AMD), save, "
                             "start Windows and open NanoClaw again"))
        return found
    state = await wsl.state(windows.tool(system_root, windows.WSL))
    if state.reboot_needed:
        found.append(Finding("wsl", False, "Windows Subsystem for Linux (WSL)",
                             "WSL is installed, but Windows has to restart before it can be used",
                             "restart Windows; NanoClaw continues the setup when you open it again",
                             action="restart_windows"))
        return found
    if not state.installed or virt.platform_feature is False:
        found.append(Finding("wsl", False, "Windows Subsystem for Linux (WSL)",
                             "The Windows Subsystem for Linux (WSL), which Podman runs its Linux system in, is not "
                             "installed" if not state.installed else
                             "The Windows feature “Virtual Machine Platform”, which WSL needs, is turned off",
                             "click “Install WSL”: Windows asks for your permission, installs it, and then needs a "
                             "restart", action="install_wsl"))
        return found
    if state.too_old:
        found.append(Finding("wsl", False, "Windows Subsystem for Linux (WSL)",
                             f"WSL {state.version} is installed, but Podman needs WSL "
                             f"{'.'.join(map(str, wsl.MIN_VERSION))} or newer",
                             "click “Update WSL”", action="update_wsl"))
        return found
    found.append(Finding("wsl", True, f"Windows Subsystem for Linux (WSL {state.version})"))
    return found


def macos_checks(facts: HostFacts) -> list[Finding]:
    """macOS: version and memory (every Mac that runs macOS 13 is 64-bit)."""
    found: list[Finding] = []
    major = facts.macos_major
    if major is not None and major < MIN_MACOS:
        found.append(Finding("macos_version", False, "macOS 13 (Ventura) or newer",
                             f"This Mac runs macOS {facts.version}; Podman needs macOS {MIN_MACOS} (Ventura) or "
                             "newer",
                             "update macOS (System Settings → General → Software Update), then open NanoClaw again",
                             action="open_software_update"))
        return found
    found.append(Finding("macos_version", True, "macOS 13 (Ventura) or newer"))
    found.append(_memory(facts, MACOS_MEMORY_GB))
    return found


def _memory(facts: HostFacts, needed_gb: int) -> Finding:
    title = f"{needed_gb} GB of memory or more"
    gb = facts.memory_gb
    if gb is None or gb >= needed_gb - 0.5:  # “8 GB” machines report a little less
        return Finding("memory", True, title)
    return Finding("memory", False, title,
                   f"This computer has {gb:.0f} GB of memory; Podman works best with {needed_gb} GB or more",
                   "you can go on: agents will be slower, and closing other programs helps", blocking=False)
