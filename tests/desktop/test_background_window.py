"""The app from source on a small X desktop with a tray: closing the window keeps the assistant answering, a second
launch brings the window back instead of starting a second host, and the tray's Quit stops everything cleanly."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest

from nanoclaw_app.desktop.instance import read_record
from nanoclaw_app.desktop.life import HIDDEN_ALERT
from nanoclaw_app.paths import Paths
from nanoclaw_app.runfile import read_run_file
from tests.desktop import xdesktop
from tests.desktop.app_process import (
    REPLY,
    AppProcess,
    app_env,
    app_url,
    chat_round_trip,
    command,
    fake_model,
    seed_home,
)
from tests.fakes.notifications import FakeNotificationDaemon
from tests.web.conftest import REPO, screenshot_dir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the X desktop test needs Linux (Xvfb)"),
]


@pytest.fixture
def tools() -> None:
    missing = xdesktop.missing_tools()
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run scripts/setup_ui_tests.sh")


def tray_shot(name: str, path: Path) -> None:
    """The top right corner: the panel with the icon, and its menu when open."""
    xdesktop.screenshot(name, path, crop="480x220+800+0")


@pytest.mark.usefixtures("tools")
def test_closed_window_keeps_answering_a_second_launch_reopens_it_and_the_tray_quits(tmp_path: Path) -> None:
    paths = Paths(home=tmp_path / "home", config=tmp_path / "config")
    asyncio.run(seed_home(paths))
    shots = screenshot_dir()
    with fake_model() as model_url, xdesktop.desktop() as desk, FakeNotificationDaemon(desk.bus) as notices:
        env = {**app_env(dict(os.environ), tmp_path, model_url), **desk.env}
        argv = [sys.executable, "-m", "nanoclaw_app", "--port", "0"]
        app = AppProcess(argv, env, cwd=REPO)
        try:
            app.wait_for("window opened on /chat")
            window = xdesktop.wait_until(lambda: xdesktop.app_window(desk.display), "the app window")
            icons = xdesktop.wait_until(lambda: xdesktop.tray_icons(desk.display), "the tray icon")
            status = command(paths, "status")
            assert status["tray"] is True
            assert status["visible"] is True
            assert status["headline"] == "Running", status
            xdesktop.settled_screenshot(desk.display, shots / "desktop-window.png")

            # The close button hides the window; the process, the web app and the agent go on.
            xdesktop.close_until(desk.display, window, lambda: not xdesktop.is_viewable(desk.display, window),
                                 "the window to hide")
            app.wait_for("window hidden; NanoClaw keeps running in the tray")
            assert app.proc.poll() is None
            assert command(paths, "status")["visible"] is False
            assert httpx.get(app_url(paths) + "health", timeout=10).json()["status"] == "ok"
            answer = asyncio.run(chat_round_trip(paths, "are you still there with the window closed?"))
            assert answer == REPLY

            # The desktop was told once that NanoClaw goes on; clicking that notification opens the window.
            xdesktop.wait_until(lambda: HIDDEN_ALERT.title in notices.summaries(), "the 'still running' notice")
            notices.click(HIDDEN_ALERT.title)
            xdesktop.wait_until(lambda: xdesktop.is_viewable(desk.display, window), "the click to open the window")
            xdesktop.close_until(desk.display, window, lambda: not xdesktop.is_viewable(desk.display, window),
                                 "the window to hide again")
            assert notices.summaries() == [HIDDEN_ALERT.title], "told again at the second close"

            # A right-click on the icon opens its menu: Open, the state in words, Quit.
            xdesktop.right_click(desk.display, icons[0])
            xdesktop.wait_until(lambda: xdesktop.popup_menus(desk.display), "the tray menu")
            tray_shot(desk.display, shots / "desktop-tray-menu.png")
            assert command(paths, "status")["menu"] == ["Open NanoClaw", "Running", "Quit NanoClaw"]
            xdesktop.press(desk.display, "Escape")
            xdesktop.wait_until(lambda: not xdesktop.popup_menus(desk.display), "the menu to close")

            # A second launch brings the first one's window forward and ends; no second host starts.
            second = AppProcess(argv, env, cwd=REPO)
            assert second.wait() == 0, second.output
            assert "its window is in front now" in second.output
            xdesktop.wait_until(lambda: xdesktop.is_viewable(desk.display, window), "the window to come back")
            held = read_record(paths)
            assert held is not None
            assert held.pid == app.proc.pid

            # Quit from the tray's menu entry (what a click on it does): the host stops cleanly.
            assert command(paths, "tray", item="quit")["ok"] is True
            assert app.wait() == 0, app.output
        finally:
            app.kill()
    assert "Traceback" not in app.output
    assert "quit from the tray" in app.output
    assert "NanoClaw host stopped" in app.output
    assert read_run_file(paths) is None
    assert read_record(paths) is None


@pytest.mark.usefixtures("tools")
def test_without_a_tray_closing_the_window_quits_as_before(tmp_path: Path) -> None:
    paths = Paths(home=tmp_path / "home", config=tmp_path / "config")
    with fake_model() as model_url, xdesktop.desktop(tray=False) as desk:
        env = {**app_env(dict(os.environ), tmp_path, model_url), **desk.env}
        app = AppProcess([sys.executable, "-m", "nanoclaw_app", "--port", "0"], env, cwd=REPO)
        try:
            app.wait_for("window opened on /setup")
            assert command(paths, "status")["tray"] is False
            window = xdesktop.wait_until(lambda: xdesktop.app_window(desk.display), "the app window")
            xdesktop.close_until(desk.display, window, lambda: app.proc.poll() is not None, "the app to quit")
            assert app.wait() == 0, app.output
        finally:
            app.kill()
    assert "closing the window quits NanoClaw: no tray icon shows on this desktop" in app.output
    assert "Traceback" not in app.output
    assert read_record(paths) is None


@pytest.mark.usefixtures("tools")
def test_a_start_at_login_waits_behind_the_tray_icon_until_opened(tmp_path: Path) -> None:
    paths = Paths(home=tmp_path / "home", config=tmp_path / "config")
    with fake_model() as model_url, xdesktop.desktop() as desk:
        env = {**app_env(dict(os.environ), tmp_path, model_url), **desk.env}
        argv = [sys.executable, "-m", "nanoclaw_app", "--port", "0", "--background"]
        app = AppProcess(argv, env, cwd=REPO)
        try:
            app.wait_for("started in the background")
            app.wait_for("window opened on /setup")  # the page loads behind the icon, ready to show
            window = xdesktop.wait_until(lambda: xdesktop.app_window(desk.display), "the app window")
            assert not xdesktop.is_viewable(desk.display, window)
            assert command(paths, "status")["visible"] is False
            # Another start at login (a second autostart entry, a service) finds it running and shows nothing.
            again = AppProcess(argv, env, cwd=REPO)
            assert again.wait() == 0, again.output
            assert not xdesktop.is_viewable(desk.display, window)
            # The tray's Open shows it.
            assert command(paths, "tray", item="open")["ok"] is True
            xdesktop.wait_until(lambda: xdesktop.is_viewable(desk.display, window), "the window to open")
            assert command(paths, "tray", item="quit")["ok"] is True
            assert app.wait() == 0, app.output
        finally:
            app.kill()
    assert "Traceback" not in app.output
