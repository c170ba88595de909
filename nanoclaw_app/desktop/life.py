"""The window process's life besides the window: closing to the tray, the tray's state, notifications, commands.

Closing the window hides it when the desktop shows the tray icon: the host keeps answering the phone chats, and the
icon's Open brings the window back, Quit stops everything. Where no tray shows (no tray host on this desktop, no tray
backend, no D-Bus session for it), closing the window quits the app as it always did, so an invisible process is never
left behind; the log says which of the two happened and why.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nanoclaw_app.desktop.gui import gui_call
from nanoclaw_app.desktop.notifications import FreedesktopNotifier, Notifications, Notifier, TrayNotifier
from nanoclaw_app.desktop.status import Alert, Status, StatusWatcher
from nanoclaw_app.desktop.tray import Tray

if TYPE_CHECKING:
    from webview import Window

    from nanoclaw_app.window import HostThread

log = logging.getLogger(__name__)

TRAY_GRACE_SECONDS = 30.0
"""A start at login may come before the desktop's panel (and its tray): how long the window may stay hidden for it."""
COMMAND_SECONDS = 10.0

HIDDEN_ALERT = Alert("hidden", "NanoClaw is still running",
                     "Your phone chats are still answered. Open or quit NanoClaw from its icon in the tray.")


class DesktopLife:
    """Owns the tray icon, the notifications and the status watch; the window module hands it the window."""

    def __init__(self, *, quitting: threading.Event, request_quit: Callable[[], None]) -> None:
        self._quitting = quitting
        self._request_quit = request_quit
        self.tray = Tray(on_open=self.open_window, on_quit=self.quit)
        self.notifications: Notifications | None = None
        self.headless = False
        """True when no window could open at all (then a second launch is told so)."""
        self.visible = False
        self._window: Window | None = None
        self._show_requested = threading.Event()
        self._told_hidden = False
        self._grace: threading.Timer | None = None
        self._watcher: StatusWatcher | None = None

    # ------------------------------------------------------------------------------------------ setup

    def start_tray(self) -> None:
        """The icon and the notifications (main thread, after the GUI toolkit loaded, before its loop runs)."""
        reason = self.tray.start()
        if reason is not None:
            log.warning("no tray icon: %s; closing the window quits NanoClaw", reason)
        notifier: Notifier | None = None
        unavailable = ""
        if sys.platform.startswith("linux"):
            try:
                notifier = FreedesktopNotifier(on_click=self.open_window)
            except Exception as err:  # no session bus: nothing can show a notification here
                unavailable = str(err)
        elif self.tray.running:
            notifier = TrayNotifier(self.tray.icon_handle)
        else:
            unavailable = "they go through the tray icon, and there is none"
        self.notifications = Notifications(notifier, gui_call, unavailable=unavailable)

    def start_hidden(self, background: bool) -> bool:
        """Whether a start at login keeps the window hidden (only behind a tray icon the user can find)."""
        if not background or self._show_requested.is_set() or not self.tray.running:
            return False
        # The icon docks only once the GUI loop runs (and the panel may start after us): check after a while.
        self._grace = threading.Timer(TRAY_GRACE_SECONDS, gui_call, (self._show_if_no_tray,))
        self._grace.daemon = True
        self._grace.start()
        log.info("started in the background: the window waits behind the tray icon (it opens in %.0f s if no tray "
                 "shows the icon by then)", TRAY_GRACE_SECONDS)
        return True

    def attach(self, window: Window, *, hidden: bool) -> None:
        """Take over the window's close button and carry out an Open that came before the window existed."""
        self._window = window
        self.visible = not hidden
        window.events.closing += self.on_closing
        window.events.shown += self._on_shown

    def watch(self, host: HostThread) -> None:
        """Follow the host's state for the tray and the notifications (again after a restart: the new host's)."""
        assert host.host is not None
        previous, self._watcher = self._watcher, None
        if previous is not None:
            try:
                host.call(previous.stop(), timeout=COMMAND_SECONDS)
            except Exception as err:
                log.warning("the tray's previous status watch did not stop cleanly: %s", err)
        watcher = StatusWatcher(host.host.services, on_status=self._on_status, on_alert=self._on_alert)
        try:
            host.call(watcher.start())
        except Exception:  # the window works without it; the tray then says "Starting…"
            log.exception("the tray cannot follow the assistant's state")
            return
        self._watcher = watcher

    def close(self, host: HostThread) -> None:
        """The app is ending: stop the watch (on the host's loop) and take the icon away."""
        if self._grace is not None:
            self._grace.cancel()
        watcher, self._watcher = self._watcher, None
        if watcher is not None and host.alive():
            try:
                host.call(watcher.stop(), timeout=COMMAND_SECONDS)
            except Exception as err:
                log.warning("the tray's status watch did not stop cleanly: %s", err)
        self.tray.stop()

    # ------------------------------------------------------------------------------------------ the window

    def on_closing(self) -> bool:
        """The window's close button (GUI thread): hide behind the tray, or let it close and the app quit."""
        if self._quitting.is_set():
            return True
        if self.tray.visible_to_user():
            self._hide()
            return False
        log.info("closing the window quits NanoClaw: no tray icon shows on this desktop to reopen it from")
        self._quitting.set()
        return True

    def open_window(self) -> None:
        """Show the window and bring it to the front (any thread)."""
        window = self._window
        if window is None or not window.events.shown.is_set():
            self._show_requested.set()  # carried out when it shows (waiting here could block the GUI thread)
            return
        self.visible = True
        window.show()
        window.restore()
        log.info("window shown")

    def quit(self) -> None:
        """The tray's Quit: stop the host and end the app, as closing the window did before the tray."""
        log.info("quit from the tray")
        self._request_quit()

    def _hide(self) -> None:
        window = self._window
        if window is None:
            return
        window.hide()
        self.visible = False
        log.info("window hidden; NanoClaw keeps running in the tray")
        if not self._told_hidden and self.notifications is not None:
            self._told_hidden = self.notifications.alert(HIDDEN_ALERT)

    def _on_shown(self) -> None:
        if self._show_requested.is_set():
            self._show_requested.clear()
            threading.Thread(target=self.open_window, name="nanoclaw-open", daemon=True).start()

    def _show_if_no_tray(self) -> None:
        """GUI thread, once the grace time is over."""
        if not self.visible and not self._quitting.is_set() and not self.tray.visible_to_user():
            log.info("no tray appeared: opening the window so NanoClaw is not invisible")
            self.open_window()

    # ------------------------------------------------------------------------------------------ host state

    def _on_status(self, status: Status) -> None:
        gui_call(lambda: self.tray.update(status))

    def _on_alert(self, alert: Alert) -> None:
        if self.notifications is not None:
            self.notifications.alert(alert)

    # ------------------------------------------------------------------------------------------ control commands

    def command(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """Answer the control listener (its thread): ``show``, ``status``, ``tray``."""
        if name == "show":
            if self.headless:
                return {"ok": False, "window": False}
            self.open_window()
            return {"ok": True, "window": True}
        if name == "status":
            status = self.tray.status
            return {"ok": True, "state": status.state, "headline": status.headline, "details": list(status.details),
                    "tray": self._on_gui(self.tray.visible_to_user), "menu": self.tray.menu_texts(),
                    "visible": self.visible}
        if name == "tray":
            return {"ok": self._on_gui(lambda: self.tray.activate(str(args.get("item", ""))))}
        return {"ok": False, "error": f"unknown command {name!r}"}

    @staticmethod
    def _on_gui(fn: Callable[[], bool]) -> bool:
        """Run ``fn`` on the GUI thread and wait for its answer."""
        done = threading.Event()
        result: list[bool] = []

        def run() -> None:
            try:
                result.append(fn())
            finally:
                done.set()

        gui_call(run)
        return done.wait(COMMAND_SECONDS) and bool(result and result[0])
