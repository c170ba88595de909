"""The tray / menu-bar icon (pystray): Open, the assistant's state in words, Quit.

On Linux pystray's ``appindicator`` backend (StatusNotifierItem: GNOME with the AppIndicator extension, KDE, most
panels) is used where its typelib is installed, else ``gtk`` (XEmbed, ``Gtk.StatusIcon``: XFCE, MATE, LXDE, i3bar,
trayer). Both are driven from GLib idle callbacks, so in "detached" mode they run inside the GTK main loop that
pywebview already runs on the main thread: no second loop, no thread. ``xorg`` has no menu (no way to quit), so it is
never used.

Whether anybody shows the icon is a separate question: a desktop without a tray host (GNOME without the extension, a
bare window manager) accepts the icon and shows nothing. :meth:`Tray.visible_to_user` asks GTK whether its XEmbed
icon is docked, or D-Bus whether a StatusNotifierWatcher runs; the window closes to the tray only when it says yes.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable
from typing import Any

from nanoclaw_app.desktop.icon import tray_image
from nanoclaw_app.desktop.status import STARTING, Status

log = logging.getLogger(__name__)

SNI_WATCHER = "org.kde.StatusNotifierWatcher"


def _import_pystray() -> Any:
    """pystray, with its Linux backend chosen here (its own default raises when no AppIndicator typelib exists)."""
    if sys.platform.startswith("linux") and not os.environ.get("PYSTRAY_BACKEND"):
        os.environ["PYSTRAY_BACKEND"] = "appindicator" if _has_appindicator() else "gtk"
    import pystray

    return pystray


def _has_appindicator() -> bool:
    import gi

    for namespace in ("AyatanaAppIndicator3", "AppIndicator3"):
        try:
            gi.require_version(namespace, "0.1")
        except ValueError:
            continue
        return True
    return False


class Tray:
    """One icon for the app's whole life; menu actions run on the GUI thread."""

    def __init__(self, *, on_open: Callable[[], None], on_quit: Callable[[], None]) -> None:
        self._on_open = on_open
        self._on_quit = on_quit
        self._status = STARTING
        self._icon: Any = None
        self._items: dict[str, Any] = {}
        self._pystray: Any = None
        self.backend = ""

    @property
    def running(self) -> bool:
        """Whether the icon was created (it may still have no tray to show in)."""
        return self._icon is not None

    @property
    def icon_handle(self) -> Any:
        """The pystray icon (its ``notify`` is the notification path on macOS and Windows)."""
        return self._icon

    @property
    def status(self) -> Status:
        """The state it shows."""
        return self._status

    def start(self) -> str | None:
        """Create and show the icon (main thread, before the GUI loop runs); returns why there is none, or None."""
        try:
            pystray = _import_pystray()
        except Exception as err:  # no backend, a broken typelib, no display: the app runs on without a tray
            return f"the tray icon library could not load ({err})"
        icon_class = pystray.Icon
        self.backend = icon_class.__module__.rsplit(".", 1)[-1].lstrip("_")
        if not icon_class.HAS_MENU:
            return f"the tray backend {self.backend!r} cannot show a menu"
        self._pystray = pystray
        self._items = {
            "open": pystray.MenuItem("Open NanoClaw", self._do_open, default=True),
            "quit": pystray.MenuItem("Quit NanoClaw", self._do_quit),
        }
        menu = pystray.Menu(self._entries)  # built anew at each update_menu(), so the state lines can change
        if self.backend in ("gtk", "appindicator"):
            reason = _session_bus_missing()
            if reason is not None:  # their start needs the session bus; failing inside it would strand a thread
                return f"the tray icon needs a D-Bus session ({reason})"
        icon = _quiet_finalize(icon_class)("nanoclaw", tray_image(self._status.state), self._status.tooltip, menu)
        sigint = signal.getsignal(signal.SIGINT)
        try:
            icon.run_detached(lambda _icon: None)
        except Exception as err:
            # pystray's setup thread (not a daemon) waits for "ready": release it, or the process could never exit.
            getattr(icon, "_mark_ready", lambda: None)()
            return f"the tray icon could not start ({self.backend}: {err})"
        finally:
            if sigint is not None and signal.getsignal(signal.SIGINT) is not sigint:
                signal.signal(signal.SIGINT, sigint)  # pystray resets Ctrl+C to "die at once"; keep our clean stop
        icon.visible = True
        self._icon = icon
        log.info("tray icon started (%s)", self.backend)
        return None

    def stop(self) -> None:
        """Take the icon away (GUI thread; idempotent)."""
        icon, self._icon = self._icon, None
        if icon is None:
            return
        try:
            icon.visible = False
            icon.stop()
        except Exception as err:
            log.info("the tray icon did not stop cleanly: %s", err)

    def update(self, status: Status) -> None:
        """Show a new state: menu line, tooltip and the dot on the icon (any thread: pystray queues GUI work)."""
        changed_picture = status.state != self._status.state
        self._status = status
        icon = self._icon
        if icon is None:
            return
        icon.title = status.tooltip
        if changed_picture:
            icon.icon = tray_image(status.state)
        icon.update_menu()

    def menu_texts(self) -> list[str]:
        """The menu's entries as shown (for the control listener's ``status``); separators left out."""
        if self._pystray is None:
            return []
        return [str(item.text) for item in self._entries() if item is not self._pystray.Menu.SEPARATOR]

    def _entries(self) -> list[Any]:
        """Open, the state (headline and what needs the user, one line each, not clickable), Quit."""
        pystray = self._pystray
        status = self._status
        lines = [pystray.MenuItem(status.headline, None, enabled=False)]
        lines += [pystray.MenuItem(f"• {detail}", None, enabled=False) for detail in status.details]
        return [self._items["open"], pystray.Menu.SEPARATOR, *lines, pystray.Menu.SEPARATOR, self._items["quit"]]

    def activate(self, key: str) -> bool:
        """Do what a click on the entry does (GUI thread); False for an unknown or disabled entry."""
        item = self._items.get(key)
        if item is None or self._icon is None or not item.enabled:
            return False
        item(self._icon)
        return True

    def visible_to_user(self) -> bool:
        """Whether the desktop shows the icon right now, so closing the window to the tray makes sense (GUI thread)."""
        if self._icon is None:
            return False
        if sys.platform in ("darwin", "win32"):
            return True  # the menu bar and the notification area are always there
        if self.backend == "gtk":
            return _status_icon_embedded(self._icon)
        if self.backend == "appindicator" and _sni_watcher_running():
            return True
        return _xembed_tray_present()  # AppIndicator falls back to an XEmbed icon where no watcher runs

    def _do_open(self, _icon: Any, _item: Any) -> None:
        self._on_open()

    def _do_quit(self, _icon: Any, _item: Any) -> None:
        self._on_quit()


def _quiet_finalize(icon_class: Any) -> Any:
    """The icon class with its exit hook made quiet.

    pystray's GTK backends close their last notification at interpreter exit over D-Bus; with no notification service
    that raises, and Python prints the traceback after our clean shutdown. Nothing is left to clean up then.
    """

    class Icon(icon_class):  # type: ignore[misc]
        def _finalize(self) -> None:
            finalize = getattr(super(), "_finalize", None)
            if finalize is None:
                return
            try:
                finalize()
            except Exception as err:
                log.debug("tray icon cleanup at exit: %s", err)

    return Icon


def _status_icon_embedded(icon: Any) -> bool:
    """Whether GTK's XEmbed icon sits in a tray now.

    GTK follows the tray manager itself (the selection, its restarts), so asking it costs no X round trip on the GUI
    thread. pystray keeps the ``Gtk.StatusIcon`` as ``_status_icon``; should that change, ask the display instead.
    """
    status_icon = getattr(icon, "_status_icon", None)
    if status_icon is None:
        return _xembed_tray_present()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # all of GtkStatusIcon is deprecated, and still works
        return bool(status_icon.is_embedded())


def _xembed_tray_present() -> bool:
    """An XEmbed system tray owns ``_NET_SYSTEM_TRAY_S<screen>`` on the X display."""
    if not os.environ.get("DISPLAY"):
        return False
    try:
        from Xlib import X, display, error
    except ImportError:
        return False
    try:
        conn = display.Display()
    except (error.DisplayError, error.DisplayConnectionError, OSError) as err:
        log.info("cannot ask the X display for a tray: %s", err)
        return False
    try:
        atom = conn.intern_atom(f"_NET_SYSTEM_TRAY_S{conn.get_default_screen()}")
        owner = conn.get_selection_owner(atom)
        return int(getattr(owner, "id", owner)) != int(X.NONE)
    finally:
        conn.close()


def _session_bus_missing() -> str | None:
    """Why the D-Bus session bus cannot be reached, or None when it can."""
    try:
        from gi.repository import Gio

        Gio.bus_get_sync(Gio.BusType.SESSION, None)
    except Exception as err:
        return str(err)
    return None


def _sni_watcher_running() -> bool:
    """A StatusNotifierItem host (the AppIndicator way) is on the session bus."""
    try:
        from gi.repository import Gio, GLib

        bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
        reply = bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
                              GLib.Variant("(s)", (SNI_WATCHER,)), GLib.VariantType("(b)"), Gio.DBusCallFlags.NONE,
                              2000, None)
    except Exception as err:
        log.info("cannot ask the session bus for a tray: %s", err)
        return False
    return bool(reply.unpack()[0])
