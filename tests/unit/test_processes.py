"""A process id is checked without signalling it (on Windows ``os.kill(pid, 0)`` would end it)."""

from __future__ import annotations

import subprocess
import sys

from nanoclaw_app.processes import pid_alive


def test_a_running_process_is_alive_and_a_finished_one_is_not() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert pid_alive(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    assert not pid_alive(proc.pid)
    assert not pid_alive(0)
