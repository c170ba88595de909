"""Desktop notifications for what needs the user while the window is closed, never more than one per cause per while.

On Linux they go to the desktop's notification service over D-Bus (``org.freedesktop.Notifications``, what
``notify-send`` uses) with a default action, so clicking one opens the window; on macOS and Windows through the tray
icon (pystray), where a click does nothing more than the OS does. Where there is no notification service the app says
so once in the log and carries on: the tray and the phone channels still tell the user.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from nanoclaw_app.desktop.status import Alert

log = logging.getLogger(__name__)

THROTTLE_SECONDS = 300.0
APP_NAME = "NanoClaw"
BUS_NAME = "org.freedesktop.Notifications"
BUS_PATH = "/org/freedesktop/Notifications"


class Throttle:
    """At most one notification per cause every ``seconds`` (a flapping WhatsApp link must not flood the desktop)."""

    def __init__(self, seconds: float = THROTTLE_SECONDS, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def allow(self, cause: str) -> bool:
        """True (and remember now) when ``cause`` was not shown within the interval."""
        now = self._clock()
        with self._lock:
            last = self._last.get(cause)
            if last is not None and now - last < self._seconds:
                return False
            self._last[cause] = now
            return True


class Notifier(Protocol):
    """Shows one notification (called on the GUI thread)."""

    def show(self, title: str, body: str) -> None:
        """Show it now."""


class FreedesktopNotifier:
    """``org.freedesktop.Notifications`` over the session bus; a click on the notification calls ``on_click``."""

    def __init__(self, on_click: Callable[[], None]) -> None:
        from gi.repository import Gio

        self._on_click = on_click
        self._bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
        self._ids: set[int] = set()
        self._bus.signal_subscribe(BUS_NAME, BUS_NAME, "ActionInvoked", BUS_PATH, None, Gio.DBusSignalFlags.NONE,
                                   self._on_action)

    def show(self, title: str, body: str) -> None:
        """Send it with a default action (a click on the bubble), which opens the window."""
        from gi.repository import Gio, GLib

        args = GLib.Variant("(susssasa{sv}i)", (
            APP_NAME, 0, "dialog-information", title, body, ["default", "Open NanoClaw"],
            {"desktop-entry": GLib.Variant("s", "nanoclaw"), "urgency": GLib.Variant("y", 1)}, -1,
        ))
        reply = self._bus.call_sync(BUS_NAME, BUS_PATH, BUS_NAME, "Notify", args, GLib.VariantType("(u)"),
                                    Gio.DBusCallFlags.NONE, 5000, None)
        self._ids.add(int(reply.unpack()[0]))

    def _on_action(self, _bus: Any, _sender: str, _path: str, _iface: str, _signal: str, params: Any) -> None:
        notification_id, action = params.unpack()
        if notification_id in self._ids and action == "default":
            self._on_click()


class TrayNotifier:
    """Through the tray icon's own notifications (macOS, Windows)."""

    def __init__(self, icon: Any) -> None:
        self._icon = icon

    def show(self, title: str, body: str) -> None:
        """A balloon (Windows) or a Notification Center entry (macOS)."""
        self._icon.notify(body, title)


class Notifications:
    """The throttle in front of whichever notifier works here; safe to call from any thread."""

    def __init__(self, notifier: Notifier | None, gui_call: Callable[[Callable[[], None]], None], *,
                 throttle: Throttle | None = None, unavailable: str = "") -> None:
        self._notifier = notifier
        self._gui_call = gui_call
        self._throttle = throttle or Throttle()
        if notifier is None:
            log.info("no desktop notifications: %s", unavailable or "no notification service")

    def alert(self, alert: Alert) -> bool:
        """Show ``alert`` unless its cause was shown a moment ago; True when it was sent to the desktop."""
        if self._notifier is None or not self._throttle.allow(alert.cause):
            return False
        notifier = self._notifier

        def show() -> None:
            try:
                notifier.show(alert.title, alert.body)
            except Exception as err:  # a notification service that went away must not break the window
                log.warning("desktop notification %r not shown: %s", alert.title, err)
            else:
                log.info("desktop notification: %s", alert.title)

        self._gui_call(show)
        return True
