"""Run a piece of GUI work on the GUI thread, from any thread (the host's loop, the control listener)."""

from __future__ import annotations

import sys
from collections.abc import Callable


def gui_call(fn: Callable[[], None]) -> None:
    """Queue ``fn`` for the GUI thread: GLib's main loop (GTK), AppKit's run loop (macOS); directly on Windows.

    pystray's and pywebview's Windows calls post window messages themselves, so they are safe from any thread there.
    """
    if sys.platform == "darwin":
        from PyObjCTools import AppHelper

        AppHelper.callAfter(fn)
    elif sys.platform == "win32":
        fn()
    else:
        from gi.repository import GLib

        def once() -> bool:
            fn()
            return False  # run once, not again at every idle

        GLib.idle_add(once)
