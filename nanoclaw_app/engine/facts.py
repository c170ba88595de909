"""What the preflight checks need to know about this computer, read once and passed around as plain values.

Kept as a value (not read inside each check) so that the Windows and macOS decisions can be tested on any machine
with the facts of another.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
from dataclasses import dataclass

log = logging.getLogger(__name__)

ARCH_64 = ("amd64", "x86_64", "arm64", "aarch64")


@dataclass(frozen=True, slots=True)
class HostFacts:
    """The operating system, its version and the hardware that matter for running Podman."""

    platform: str
    """``sys.platform``: ``win32``, ``darwin`` or ``linux``."""
    arch: str
    """The operating system's architecture (not the Python build's): ``AMD64``, ``ARM64``, ``x86``, ``arm64`` …"""
    version: str
    """Windows: ``10.0.<build>`` (Windows 11 is 10.0 too); macOS: the product version, e.g. ``14.5``."""
    memory_bytes: int | None = None

    @property
    def is_64bit(self) -> bool:
        """Whether the OS is 64-bit."""
        return self.arch.lower() in ARCH_64

    @property
    def windows_build(self) -> int | None:
        """The Windows build number (19045 for Windows 10 22H2, 22000 and up for Windows 11)."""
        parts = self.version.split(".")
        return int(parts[2]) if len(parts) >= 3 and parts[2].isdigit() else None

    @property
    def macos_major(self) -> int | None:
        """The major version of macOS (13 is Ventura)."""
        head = self.version.split(".")[0]
        return int(head) if head.isdigit() else None

    @property
    def memory_gb(self) -> float | None:
        """Installed memory in GB, when it could be read."""
        return None if self.memory_bytes is None else self.memory_bytes / 1024**3


def current() -> HostFacts:
    """The facts of the computer this runs on."""
    if sys.platform == "win32":
        # A 32-bit process on 64-bit Windows sees PROCESSOR_ARCHITECTURE=x86; the real one is in the W6432 variable.
        arch = os.environ.get("PROCESSOR_ARCHITEW6432") or os.environ.get("PROCESSOR_ARCHITECTURE") or \
            platform.machine()
        return HostFacts(sys.platform, arch, platform.version(), _windows_memory())
    if sys.platform == "darwin":
        return HostFacts(sys.platform, platform.machine(), platform.mac_ver()[0], _posix_memory())
    return HostFacts(sys.platform, platform.machine(), platform.release(), _posix_memory())


def _posix_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _windows_memory() -> int | None:
    if sys.platform == "win32":
        import ctypes
        from ctypes import wintypes

        class MemoryStatus(ctypes.Structure):
            _fields_ = [
                ("dwLength", wintypes.DWORD), ("dwMemoryLoad", wintypes.DWORD), ("ullTotalPhys", ctypes.c_uint64),
                ("ullAvailPhys", ctypes.c_uint64), ("ullTotalPageFile", ctypes.c_uint64),
                ("ullAvailPageFile", ctypes.c_uint64), ("ullTotalVirtual", ctypes.c_uint64),
                ("ullAvailVirtual", ctypes.c_uint64), ("ullAvailExtendedVirtual", ctypes.c_uint64),
            ]

        status = MemoryStatus()
        status.dwLength = ctypes.sizeof(MemoryStatus)
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
            return int(status.ullTotalPhys)
        log.warning("could not read the installed memory (GlobalMemoryStatusEx failed)")
    return None
