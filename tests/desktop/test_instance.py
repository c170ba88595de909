"""One NanoClaw per home: the lock, a lock left by a killed process, the control listener, and `nanoclaw serve`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nanoclaw_app.desktop.control import ControlServer, send_command
from nanoclaw_app.desktop.instance import (
    InstanceLock,
    InstanceRecord,
    hold_instance,
    read_record,
    write_record,
)
from nanoclaw_app.errors import ConfigError
from nanoclaw_app.paths import Paths
from tests.web.conftest import REPO

HOLDER = """
import sys, time
from nanoclaw_app.desktop.instance import InstanceLock
from nanoclaw_app.paths import Paths
lock = InstanceLock(Paths.from_env())
print("held" if lock.acquire() else "refused", flush=True)
time.sleep(600)
"""


def test_a_second_instance_on_the_same_home_is_refused_until_the_first_lets_go(paths: Paths) -> None:
    first, second = InstanceLock(paths), InstanceLock(paths)
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


def test_another_home_has_its_own_lock(paths: Paths, tmp_path: Path) -> None:
    other = Paths(home=tmp_path / "other-home", config=tmp_path / "other-config")
    mine, theirs = InstanceLock(paths), InstanceLock(other)
    assert mine.acquire()
    assert theirs.acquire()
    mine.release()
    theirs.release()


@pytest.mark.skipif(sys.platform == "win32", reason="kills its helper with SIGKILL")
def test_the_lock_of_a_killed_process_is_taken_over(paths: Paths) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], cwd=REPO, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "NANOCLAW_HOME": str(paths.home),
                                   "NANOCLAW_CONFIG_DIR": str(paths.config)})
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        lock = InstanceLock(paths)
        assert not lock.acquire(), "a running holder's lock was taken"
        holder.send_signal(signal.SIGKILL)  # no clean-up code runs: only the OS can free the lock
        holder.wait(30)
        assert lock.acquire(), "the lock of a killed process stayed taken"
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_the_record_is_removed_only_by_its_own_process(paths: Paths) -> None:
    lock = InstanceLock(paths)
    assert lock.acquire()
    write_record(paths, InstanceRecord(pid=os.getpid(), kind="serve"))
    assert read_record(paths) == InstanceRecord(pid=os.getpid(), kind="serve")
    assert (paths.run / "instance.json").stat().st_mode & 0o077 == 0, "the record (it holds a token) is private"
    lock.release()
    assert read_record(paths) is None


def test_hold_instance_refuses_a_second_host_with_a_plain_sentence(paths: Paths) -> None:
    with hold_instance(paths, "serve"), pytest.raises(ConfigError) as refused, hold_instance(paths, "serve"):
        pass
    assert f"NanoClaw is already running for this home (process {os.getpid()}" in str(refused.value)
    assert "nanoclaw open" in str(refused.value)


def test_nanoclaw_serve_refuses_to_start_a_second_host(paths: Paths) -> None:
    with hold_instance(paths, "window"):
        out = subprocess.run([sys.executable, "-m", "nanoclaw_app", "serve", "--port", "0"], cwd=REPO,
                             capture_output=True, text=True, timeout=120, check=False,
                             env={**os.environ, "NANOCLAW_RUNTIME": "local"})
    assert out.returncode == 2, out.stdout + out.stderr
    assert "NanoClaw is already running for this home" in out.stderr
    assert "Traceback" not in out.stderr
    assert "is running: http" not in out.stdout, "a second host started"


def test_the_control_listener_answers_only_with_its_token() -> None:
    seen: list[str] = []

    def handler(command: str, args: dict[str, object]) -> dict[str, object]:
        seen.append(command)
        return {"ok": True, "window": True, "args": args}

    server = ControlServer(handler)
    server.start()
    try:
        good = InstanceRecord(pid=os.getpid(), kind="window", port=server.port, token=server.token)
        assert send_command(good, "show", item="x") == {"ok": True, "window": True, "args": {"item": "x"}}
        forged = InstanceRecord(pid=os.getpid(), kind="window", port=server.port, token="guessed")
        assert send_command(forged, "tray", item="quit") == {"ok": False, "error": "refused"}
        assert seen == ["show"]
    finally:
        server.stop()
    assert send_command(good, "show", timeout=2) is None, "a stopped listener still answered"
