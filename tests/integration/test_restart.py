"""Restart now: the host stops and starts again in the same process with the settings on disk, and the settings that
waited for a restart stop waiting. The page's button and the window rely on this."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx

from nanoclaw_app.runfile import read_run_file
from nanoclaw_app.services import app_settings
from nanoclaw_app.services.auth import issue_login_token
from nanoclaw_app.settings import Settings, load_settings
from nanoclaw_app.window import HostThread

WAIT = 60.0


def test_restart_now_starts_a_new_host_with_the_saved_settings_and_nothing_waits_any_more(settings: Settings) -> None:
    fresh = load_settings(settings.paths, port=0, runtime="local")
    thread = HostThread(fresh, reload=lambda: load_settings(settings.paths, port=0, runtime="local"))
    restarted: list[str] = []
    thread.on_restarted = restarted.append
    thread.launch()
    try:
        url = thread.wait_ready()
        first = thread.host
        assert first is not None
        services = first.services
        # The timezone is read at start only: saved, it waits for a restart, and the page offers the button.
        thread.call(app_settings.update_settings(services, {"timezone": "Asia/Tokyo"}))
        read = thread.call(app_settings.read_settings(services))
        assert read.restart_needed == ["timezone"]
        assert read.can_restart

        with httpx.Client(base_url=url, timeout=30) as client:  # what the button does
            client.get(f"/login?token={thread.call(issue_login_token(first.db))}")
            client.get("/health")
            client.headers["x-csrftoken"] = client.cookies["nanoclaw_csrf"]
            assert client.post("/api/app/restart").status_code == 202

        deadline = time.monotonic() + WAIT
        while not restarted:
            assert time.monotonic() < deadline, "the host did not come back"
            time.sleep(0.05)
        second = thread.host
        assert second is not None
        assert second is not first
        assert second.state.run != first.state.run
        assert second.settings.timezone == "Asia/Tokyo"  # the new host read the file
        assert httpx.get(f"{restarted[0]}health", timeout=10).json()["status"] == "ok"
        again = thread.call(app_settings.read_settings(second.services))
        assert again.restart_needed == []  # nothing waits any more
    finally:
        thread.stop()
    assert not thread.failed


def test_a_served_host_re_executes_itself_in_place_keeping_its_pid_and_sign_in(settings: Settings) -> None:
    """``nanoclaw serve`` (what a service manager runs) restarts by replacing its process: the same pid."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {**os.environ, "NANOCLAW_RUNTIME": "local", "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    proc = subprocess.Popen([sys.executable, "-m", "nanoclaw_app", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    base = f"http://127.0.0.1:{port}"

    def health() -> dict[str, object] | None:
        try:
            answer: dict[str, object] = httpx.get(f"{base}/health", timeout=2).json()
        except httpx.HTTPError:
            return None
        return answer if answer.get("status") == "ok" else None

    try:
        deadline = time.monotonic() + WAIT
        while health() is None:
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        login = subprocess.run([sys.executable, "-m", "nanoclaw_app", "open"], env=env, capture_output=True,
                               text=True, timeout=60, check=True).stdout
        link = next(word for word in login.split() if "login?token=" in word)
        with httpx.Client(base_url=base, timeout=30) as client:
            client.get(link)
            client.get("/health")
            client.headers["x-csrftoken"] = client.cookies["nanoclaw_csrf"]
            assert client.post("/api/app/restart").status_code == 202
            deadline = time.monotonic() + WAIT
            while "restarting NanoClaw\n" not in lines or health() is None:
                assert proc.poll() is None, "".join(lines)
                assert time.monotonic() < deadline, "".join(lines)
                time.sleep(0.1)
            assert client.get("/api/settings").status_code == 200  # the same browser is still signed in
        assert sum("is running:" in line for line in lines) == 2  # a second start ...
        record = read_run_file(settings.paths)
        assert record is not None
        assert record["pid"] == proc.pid  # ... in the same process
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        reader.join(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert "Traceback" not in "".join(lines)
