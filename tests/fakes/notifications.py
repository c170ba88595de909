"""A desktop notification service (``org.freedesktop.Notifications``) on a test's session bus.

It records every notification the app sends and can "click" one (the ``ActionInvoked`` signal a real daemon sends
when the user clicks the bubble). Runs its own GLib loop in a thread.
"""

from __future__ import annotations

import threading
from typing import Any

import gi

gi.require_version("Gio", "2.0")
gi.require_version("GLib", "2.0")
from gi.repository import Gio, GLib  # noqa: E402 - the versions must be chosen first

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
XML = f"""
<node>
  <interface name="{NAME}">
    <method name="Notify">
      <arg type="s" direction="in"/><arg type="u" direction="in"/><arg type="s" direction="in"/>
      <arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="as" direction="in"/>
      <arg type="a{{sv}}" direction="in"/><arg type="i" direction="in"/><arg type="u" direction="out"/>
    </method>
    <method name="CloseNotification"><arg type="u" direction="in"/></method>
    <method name="GetCapabilities"><arg type="as" direction="out"/></method>
    <method name="GetServerInformation">
      <arg type="s" direction="out"/><arg type="s" direction="out"/><arg type="s" direction="out"/>
      <arg type="s" direction="out"/>
    </method>
    <signal name="ActionInvoked"><arg type="u"/><arg type="s"/></signal>
  </interface>
</node>
"""


class FakeNotificationDaemon:
    """``notifications`` holds (id, summary, body, actions) in arrival order."""

    def __init__(self, bus_address: str) -> None:
        self.notifications: list[tuple[int, str, str, list[str]]] = []
        self._address = bus_address
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._loop: GLib.MainLoop | None = None
        self._context: GLib.MainContext | None = None
        self._conn: Gio.DBusConnection | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fake-notifications", daemon=True)

    def __enter__(self) -> FakeNotificationDaemon:
        self._thread.start()
        assert self._ready.wait(30), "the fake notification service did not come up"
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._context is not None:
            self._context.invoke_full(GLib.PRIORITY_DEFAULT, self._quit)
        self._thread.join(10)

    def _quit(self) -> bool:
        if self._conn is not None:
            self._conn.close_sync(None)
        if self._loop is not None:
            self._loop.quit()
        return False

    def _run(self) -> None:
        self._context = GLib.MainContext.new()
        self._context.push_thread_default()
        try:
            self._loop = GLib.MainLoop.new(self._context, False)
            flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
            self._conn = Gio.DBusConnection.new_for_address_sync(self._address, flags, None, None)
            interface = Gio.DBusNodeInfo.new_for_xml(XML).interfaces[0]
            self._conn.register_object(PATH, interface, self._on_call, None, None)
            reply = self._conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                         "RequestName", GLib.Variant("(su)", (NAME, 4)), GLib.VariantType("(u)"),
                                         Gio.DBusCallFlags.NONE, 5000, None)
            assert reply.unpack()[0] == 1, "another notification service owns the name"
        except BaseException as err:
            self._error = err
            self._ready.set()
            return
        self._ready.set()
        self._loop.run()
        self._context.pop_thread_default()

    def _on_call(self, _conn: Any, _sender: str, _path: str, _iface: str, method: str, params: GLib.Variant,
                 invocation: Gio.DBusMethodInvocation) -> None:
        if method == "Notify":
            _app, _replaces, _icon, summary, body, actions, _hints, _timeout = params.unpack()
            with self._lock:
                nid = len(self.notifications) + 1
                self.notifications.append((nid, summary, body, list(actions)))
            invocation.return_value(GLib.Variant("(u)", (nid,)))
        elif method == "GetCapabilities":
            invocation.return_value(GLib.Variant("(as)", (["actions", "body"],)))
        elif method == "GetServerInformation":
            invocation.return_value(GLib.Variant("(ssss)", ("fake", "nanoclaw-tests", "1", "1.2")))
        else:
            invocation.return_value(None)

    def summaries(self) -> list[str]:
        with self._lock:
            return [summary for _nid, summary, _body, _actions in self.notifications]

    def click(self, summary: str) -> None:
        """The user clicks the newest notification with this summary (its default action)."""
        with self._lock:
            nid = next(n for n, s, _b, _a in reversed(self.notifications) if s == summary)
        assert self._context is not None

        def emit() -> bool:
            assert self._conn is not None
            self._conn.emit_signal(None, PATH, NAME, "ActionInvoked", GLib.Variant("(us)", (nid, "default")))
            return False

        self._context.invoke_full(GLib.PRIORITY_DEFAULT, emit)
