"""Processes on every OS: whether a pid is alive, and starting this program afresh in its own place.

``os.kill(pid, 0)`` checks a pid on POSIX but ends the process on Windows, hence the two ways.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

_STILL_ACTIVE = 259
_QUERY_LIMITED_INFORMATION = 0x1000


def pid_alive(pid: int) -> bool:
    """True when ``pid`` names a running process (one of another user counts)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return _windows_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _windows_alive(pid: int) -> bool:
    import ctypes  # Windows only: asks for the exit code instead of sending anything

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined,unused-ignore]
    handle = kernel32.OpenProcess(_QUERY_LIMITED_INFORMATION, False, pid)
    if not handle:
        return bool(kernel32.GetLastError() == 5)  # access denied: it exists, another user's
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == _STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def start_again() -> NoReturn:
    """Replace this process with a fresh start of the same command, reading the settings on disk again.

    The pid stays (a service manager keeps following it), and so do the terminal and the log file.
    """
    logging.shutdown()
    if getattr(sys, "frozen", False):
        os.environ["PYINSTALLER_RESET_ENVIRONMENT"] = "1"  # the bundle starts as new, not as its own child
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])  # noqa: S606 (this program, its arguments)
