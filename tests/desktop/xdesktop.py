"""A small desktop for window tests: Xvfb, a D-Bus session bus, the `trayer` panel (an XEmbed system tray), and
X11 helpers that act as the user would (the close button's WM_DELETE_WINDOW, a right-click on the tray icon).

Shared by tests/desktop (the app from source) and tests/frozen (the built binary). Windows are found by title and tray
icons by the X window tree, never by screen coordinates.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from Xlib import XK, X, display
from Xlib.error import BadWindow
from Xlib.ext import xtest
from Xlib.protocol import event as xevent
from Xlib.xobject.drawable import Window

WAIT_SECONDS = 60.0
TITLE = "NanoClaw"


@dataclass(frozen=True)
class Desktop:
    """Where the desktop lives: pass ``env`` to the app."""

    display: str
    bus: str

    @property
    def env(self) -> dict[str, str]:
        return {"DISPLAY": self.display, "DBUS_SESSION_BUS_ADDRESS": self.bus}


def missing_tools() -> list[str]:
    return [tool for tool in ("Xvfb", "trayer", "dbus-daemon", "import") if shutil.which(tool) is None]


@contextmanager
def desktop(tray: bool = True) -> Iterator[Desktop]:
    """Xvfb (it picks a free display number), a private session bus and, with ``tray``, a tray in a top panel."""
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    procs: list[subprocess.Popen[bytes]] = [xvfb]
    try:
        assert number, "Xvfb did not start"
        name = f":{number}"
        bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        procs.append(bus)
        assert bus.stdout is not None
        address = bus.stdout.readline().decode().strip()
        assert address, "dbus-daemon did not start"
        if tray:
            procs.append(subprocess.Popen(
                ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request", "--height", "32",
                 "--SetDockType", "true", "--transparent", "false", "--tint", "0x3b4252"],
                env={**os.environ, "DISPLAY": name}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_until(lambda: tray_owner(name) is not None, "the tray panel to start")
        yield Desktop(name, address)
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def wait_until(predicate, what: str, seconds: float = WAIT_SECONDS):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@contextmanager
def _x(name: str) -> Iterator[display.Display]:
    conn = display.Display(name)
    try:
        yield conn
    finally:
        conn.close()


def tray_owner(name: str) -> int | None:
    with _x(name) as conn:
        owner = conn.get_selection_owner(conn.intern_atom("_NET_SYSTEM_TRAY_S0"))
        value = int(getattr(owner, "id", owner))
        return value or None


def _walk(win: Window) -> Iterator[Window]:
    yield win
    try:
        children = win.query_tree().children
    except BadWindow:
        return
    for child in children:
        yield from _walk(child)


def _title(conn: display.Display, win: Window) -> str | None:
    try:
        name = win.get_full_text_property(conn.intern_atom("_NET_WM_NAME")) or win.get_wm_name()
    except BadWindow:
        return None
    return name if isinstance(name, str) else None


def app_window(name: str, title: str = TITLE) -> int | None:
    """The id of the top-level window with this title, mapped or not."""
    with _x(name) as conn:
        for win in _walk(conn.screen().root):
            if _title(conn, win) == title:
                return int(win.id)
    return None


def is_viewable(name: str, window: int) -> bool:
    with _x(name) as conn:
        try:
            return bool(conn.create_resource_object("window", window).get_attributes().map_state == X.IsViewable)
        except BadWindow:
            return False


def close_window(name: str, window: int) -> None:
    """What a window manager sends for the close button: WM_PROTOCOLS / WM_DELETE_WINDOW."""
    with _x(name) as conn:
        win = conn.create_resource_object("window", window)
        message = xevent.ClientMessage(window=win, client_type=conn.intern_atom("WM_PROTOCOLS"),
                                       data=(32, [conn.intern_atom("WM_DELETE_WINDOW"), X.CurrentTime, 0, 0, 0]))
        win.send_event(message)
        conn.flush()


def close_until(name: str, window: int, done, what: str) -> None:  # type: ignore[no-untyped-def]
    """Click the close button until ``done()``: GTK drops a close that comes while a fresh window is still busy
    starting up (seen on a loaded machine, just after the first page loaded); a person would click again."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        close_window(name, window)
        try:
            wait_until(done, what, seconds=5)
        except AssertionError:
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            continue
        return


def tray_icons(name: str) -> list[int]:
    """Icons docked in the panel: the mapped windows that carry a WM_CLASS inside trayer's panel."""
    with _x(name) as conn:
        panels = [w for w in _walk(conn.screen().root) if _wm_class(w) == ("panel", "trayer")]
        icons = []
        for panel in panels:
            for win in _walk(panel):
                if win.id != panel.id and _wm_class(win) is not None and _mapped(win):
                    icons.append(int(win.id))
        return icons


def _wm_class(win: Window) -> tuple[str, str] | None:
    try:
        value = win.get_wm_class()
    except BadWindow:
        return None
    return tuple(value) if value else None  # type: ignore[return-value]


def _mapped(win: Window) -> bool:
    try:
        return bool(win.get_attributes().map_state == X.IsViewable)
    except BadWindow:
        return False


def popup_menus(name: str) -> list[int]:
    """Mapped override-redirect windows: GTK's popup menus."""
    with _x(name) as conn:
        found = []
        for win in conn.screen().root.query_tree().children:
            try:
                attrs = win.get_attributes()
            except BadWindow:
                continue
            if attrs.override_redirect and attrs.map_state == X.IsViewable:
                geometry = win.get_geometry()
                if geometry.width > 20 and geometry.height > 20:
                    found.append(int(win.id))
        return found


def right_click(name: str, window: int) -> None:
    """Press and release the right button over the middle of ``window`` (XTEST, as a real mouse does)."""
    with _x(name) as conn:
        win = conn.create_resource_object("window", window)
        geometry = win.get_geometry()
        where = conn.screen().root.translate_coords(win, geometry.width // 2, geometry.height // 2)
        xtest.fake_input(conn, X.MotionNotify, x=where.x, y=where.y)
        conn.sync()
        time.sleep(0.2)
        xtest.fake_input(conn, X.ButtonPress, 3)
        conn.sync()
        time.sleep(0.1)
        xtest.fake_input(conn, X.ButtonRelease, 3)
        conn.sync()


def press(name: str, key: str) -> None:
    with _x(name) as conn:
        code = conn.keysym_to_keycode(XK.string_to_keysym(key))
        xtest.fake_input(conn, X.KeyPress, code)
        conn.sync()
        xtest.fake_input(conn, X.KeyRelease, code)
        conn.sync()


def screenshot(name: str, path: Path, *, crop: str | None = None) -> tuple[int, str]:
    """Save the screen (or a ``WxH+X+Y`` part of it); returns its number of colours (a blank one has one) and a
    hash of its pixels."""
    env = {**os.environ, "DISPLAY": name}
    subprocess.run(["import", "-window", "root", *(["-crop", crop] if crop else []), str(path)], env=env,
                   check=True, capture_output=True, timeout=60)
    out = subprocess.run(["identify", "-format", "%k %#", str(path)], check=True, capture_output=True, text=True,
                         timeout=60)
    colours, pixels = out.stdout.split()
    return int(colours), pixels


def settled_screenshot(name: str, path: Path) -> None:
    """A screenshot once a page has painted and stopped changing."""
    previous = ""

    def settled() -> bool:
        nonlocal previous
        colours, pixels = screenshot(name, path)
        same = colours >= 16 and pixels == previous
        previous = pixels
        return same

    wait_until(settled, "the window to paint a page")
