"""The frozen binary is the desktop app: its window opens on the wizard under Xvfb, closing it leaves the host running
behind its tray icon, and the tray's Quit ends it cleanly."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest

from nanoclaw_app.desktop.instance import read_record
from nanoclaw_app.paths import Paths
from nanoclaw_app.runfile import read_run_file
from tests.desktop import xdesktop
from tests.desktop.app_process import AppProcess, app_url, command
from tests.web.conftest import screenshot_dir

pytestmark = [
    pytest.mark.frozen,
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the X desktop test needs Linux (Xvfb)"),
]


def test_the_frozen_window_opens_on_setup_closes_to_the_tray_and_quits_from_it(binary: Path,
                                                                              tmp_path: Path) -> None:
    missing = xdesktop.missing_tools()
    assert not missing, f"missing {', '.join(missing)}: run scripts/setup_ui_tests.sh"
    paths = Paths(home=tmp_path / "home", config=tmp_path / "config")
    for folder in ("user", "xdg-run", "xdg-config"):
        (tmp_path / folder).mkdir(mode=0o700)
    shots = screenshot_dir()
    with xdesktop.desktop() as desk:
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "PYWEBVIEW_GUI")}
        env.update(desk.env, NANOCLAW_HOME=str(paths.home), NANOCLAW_CONFIG_DIR=str(paths.config),
                   HOME=str(tmp_path / "user"), XDG_RUNTIME_DIR=str(tmp_path / "xdg-run"),
                   XDG_CONFIG_HOME=str(tmp_path / "xdg-config"), PYSTRAY_BACKEND="gtk")
        app = AppProcess([str(binary), "--port", "0"], env)
        try:
            app.wait_for("window opened on /setup")
            window = xdesktop.wait_until(lambda: xdesktop.app_window(desk.display), "the app window")
            icons = xdesktop.wait_until(lambda: xdesktop.tray_icons(desk.display), "the tray icon")
            xdesktop.settled_screenshot(desk.display, shots / "frozen-window-setup.png")

            xdesktop.close_until(desk.display, window, lambda: not xdesktop.is_viewable(desk.display, window),
                                 "the window to hide")
            app.wait_for("window hidden; NanoClaw keeps running in the tray")
            assert httpx.get(app_url(paths) + "health", timeout=10).json()["status"] == "ok"

            # The tray says what needs the user on a fresh install, in words, in its menu.
            status = command(paths, "status")
            assert status["state"] == "attention"
            assert "Setup is not finished: open NanoClaw to finish it" in status["details"]
            xdesktop.right_click(desk.display, icons[0])
            xdesktop.wait_until(lambda: xdesktop.popup_menus(desk.display), "the tray menu")
            xdesktop.screenshot(desk.display, shots / "frozen-tray-menu.png", crop="640x260+640+0")
            xdesktop.press(desk.display, "Escape")

            assert command(paths, "tray", item="quit")["ok"] is True
            assert app.wait() == 0, app.output
        finally:
            app.kill()
    assert "Traceback" not in app.output
    assert "quit from the tray" in app.output
    assert read_run_file(paths) is None
    assert read_record(paths) is None
