"""``nanoclaw`` (no command): the app window on a virtual X display (GTK/WebKit), and headless where no window can open.

Each test runs the real entry point, ``python -m nanoclaw_app``, as a user would; NANOCLAW_HOME is the test's own and
no OS keyring or container engine is touched (runtime ``local``, the null keyring).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from nanoclaw_app.paths import Paths
from nanoclaw_app.runfile import read_run_file
from nanoclaw_app.window import STOP_SECONDS
from tests.web.conftest import REPO, screenshot_dir

# Xvfb and GTK exist only on Linux; CI runs Linux, so this smoke test always runs there (macOS/Windows windows are
# covered by the packaging work on their own runners).
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the X display test needs Linux (Xvfb)")

WAIT_SECONDS = 60.0


class App:
    """The app as a child process; its output is collected by reader threads so it can never block on a full pipe."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nanoclaw_app", "--port", "0"], cwd=REPO, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._changed = threading.Condition()
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str], lines: list[str]) -> None:
        for line in stream:
            with self._changed:
                lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, text: str, *, stream: str = "out") -> str:
        """The first output line containing ``text``; fails with everything printed if it does not come."""
        lines = self.out if stream == "out" else self.err
        deadline = time.monotonic() + WAIT_SECONDS
        with self._changed:
            while True:
                found = next((line for line in lines if text in line), None)
                if found is not None:
                    return found
                if self.proc.poll() is not None and not any(r.is_alive() for r in self._readers):
                    pytest.fail(f"the app exited ({self.proc.returncode}) before printing {text!r}:\n{self.output}")
                if time.monotonic() > deadline:
                    pytest.fail(f"the app did not print {text!r} within {WAIT_SECONDS:.0f} s:\n{self.output}")
                self._changed.wait(1.0)

    def stop(self, sig: signal.Signals) -> int:
        """Send ``sig`` and wait for the exit code."""
        self.proc.send_signal(sig)
        limit = STOP_SECONDS + 15  # past the app's own limit, so its "did not stop" line names the slow step
        try:
            code: int | None = self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        for reader in self._readers:
            reader.join(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        if code is None:
            pytest.fail(f"the app did not exit within {limit:.0f} s of {sig.name}:\n{self.output}")
        return code

    @property
    def output(self) -> str:
        return "".join(self.out) + "".join(self.err)


@pytest.fixture
def app_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "PYWEBVIEW_GUI")}
    env.update(NANOCLAW_RUNTIME="local", PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
               XDG_RUNTIME_DIR=str(tmp_path / "xdg-run"), HOME=str(tmp_path / "user"))
    (tmp_path / "xdg-run").mkdir(mode=0o700)
    (tmp_path / "user").mkdir()
    return env


@pytest.fixture
def display() -> Iterator[str]:
    """A private Xvfb display (Xvfb picks a free number and writes it to the pipe)."""
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    if not number:
        xvfb.kill()
        pytest.fail(f"Xvfb did not start: {xvfb.communicate()[1].decode(errors='replace')}")
    try:
        yield f":{number}"
    finally:
        xvfb.terminate()
        xvfb.communicate(timeout=10)


def _sessions(paths: Paths) -> list[str]:
    """Origins of the web sessions in the app's database (the window's comes from its login link)."""
    if not paths.central_db.exists():
        return []
    with sqlite3.connect(paths.central_db, timeout=10) as conn:
        try:
            return [row[0] for row in conn.execute("SELECT origin FROM web_sessions")]
        except sqlite3.OperationalError:  # not migrated yet
            return []


def _screenshot(display: str, path: Path) -> tuple[int, str]:
    """Save the whole X screen; returns how many distinct colours it has (a blank screen has one) and a pixel hash."""
    env = {**os.environ, "DISPLAY": display}
    subprocess.run(["import", "-window", "root", str(path)], env=env, check=True, capture_output=True, timeout=60)
    info = subprocess.run(["identify", "-format", "%k %#", str(path)], check=True, capture_output=True, text=True,
                          timeout=60)
    colours, pixels = info.stdout.split()
    return int(colours), pixels


def _settled_screenshot(display: str, path: Path) -> None:
    """A screenshot once the window has painted a page and its script has stopped changing it."""
    deadline = time.monotonic() + WAIT_SECONDS
    previous = ""
    while True:
        colours, pixels = _screenshot(display, path)
        if colours >= 16 and pixels == previous:  # text and colours, and the same as half a second ago
            return
        assert time.monotonic() < deadline, "the window stayed blank or kept changing"
        previous = pixels
        time.sleep(0.5)


def test_window_opens_signed_in_on_setup_and_sigterm_closes_it_cleanly(app_env: dict[str, str], display: str) -> None:
    app = App({**app_env, "DISPLAY": display})
    try:
        app.wait_for("window opened on /setup", stream="err")
        paths = Paths.from_env()
        # The window signed itself in with its one-time link, and the app reports where it serves.
        assert "link" in _sessions(paths)
        running = read_run_file(paths)
        assert running is not None
        assert httpx.get(f"{running['url']}health", timeout=10).status_code == 200
        _settled_screenshot(display, screenshot_dir() / "window.png")
    finally:
        code = app.stop(signal.SIGTERM)
    assert code == 0, app.output
    assert "Traceback" not in app.output
    assert "window closed" in app.output
    assert read_run_file(Paths.from_env()) is None, "the run file outlived the app"
    assert "is running" not in "".join(app.out), "a window was open, yet the app said it runs headless"


def _window_id(display: str) -> str:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "^NanoClaw$"], capture_output=True,
                               text=True, check=False, env={**os.environ, "DISPLAY": display})
        if found.stdout.split():
            return found.stdout.split()[0]
        assert time.monotonic() < deadline, "no NanoClaw window was mapped"
        time.sleep(0.2)


def test_a_failed_start_says_why_in_the_window_and_try_again_starts_afresh(app_env: dict[str, str],
                                                                            display: str) -> None:
    paths = Paths.from_env()
    paths.central_db.mkdir(parents=True)  # a folder where the database file belongs: it cannot be opened
    app = App({**app_env, "DISPLAY": display})
    try:
        app.wait_for("NanoClaw could not start: NanoClaw cannot open its database", stream="err")
        window = _window_id(display)  # the window stays, on a page that says why, instead of vanishing
        _settled_screenshot(display, screenshot_dir() / "window-start-failed.png")
        paths.central_db.rmdir()  # the user fixes it ...
        env = {**os.environ, "DISPLAY": display}
        subprocess.run(["xdotool", "windowfocus", "--sync", window, "key", "Return"], env=env, check=True,
                       timeout=30)  # ... and presses "Try again" (it has the focus)
        app.wait_for("starting again, as asked on the failure page", stream="err")
        app.wait_for("window opened on /setup", stream="err")  # the same process, started afresh
        assert "link" in _sessions(paths)
    finally:
        code = app.stop(signal.SIGTERM)
    assert code == 0, app.output
    assert "Traceback" not in app.output


def test_without_a_display_the_app_runs_headless_and_prints_the_url(app_env: dict[str, str]) -> None:
    app = App(app_env)
    try:
        line = app.wait_for("is running: http://127.0.0.1:")
        url = line.split("is running: ", 1)[1].strip()
        app.wait_for("nanoclaw open")
        assert httpx.get(f"{url}health", timeout=10).status_code == 200
        assert "no app window: there is no display" in "".join(app.out)
    finally:
        code = app.stop(signal.SIGINT)
    assert code == 0, app.output
    assert "Traceback" not in app.output


def test_without_a_gui_backend_the_app_runs_headless_without_a_traceback(app_env: dict[str, str],
                                                                        tmp_path: Path) -> None:
    # A display is named but neither GTK nor Qt can be imported (as on a machine without the `gtk` extra).
    broken = tmp_path / "no-gui"
    (broken / "gi").mkdir(parents=True)
    (broken / "gi" / "__init__.py").write_text("raise ImportError('PyGObject is not installed')\n")
    app = App({**app_env, "DISPLAY": ":99999", "PYTHONPATH": str(broken)})
    try:
        app.wait_for("is running: http://127.0.0.1:")
        app.wait_for("nanoclaw open")
        out = "".join(app.out)
        assert "no GUI backend for the window" in out
        assert "scripts/setup.sh" in out
    finally:
        code = app.stop(signal.SIGTERM)
    assert code == 0, app.output
    assert "Traceback" not in app.output


def test_with_an_unreachable_display_the_app_runs_headless(app_env: dict[str, str]) -> None:
    app = App({**app_env, "DISPLAY": ":99999"})
    try:
        app.wait_for("is running: http://127.0.0.1:")
        app.wait_for("cannot open the display :99999")  # the next line: it may not have been read yet
    finally:
        code = app.stop(signal.SIGINT)
    assert code == 0, app.output
    assert "Traceback" not in app.output
