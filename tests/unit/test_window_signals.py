"""SIGTERM/SIGINT in the app: the handler runs beside whatever the main thread holds, and must not wait on it."""

from __future__ import annotations

import subprocess
import sys

# The main thread is inside Event.wait, holding the Event's own lock, when SIGTERM arrives; the stop request sets
# that Event. Run in a child process: with a handler that takes the lock itself, the child hangs forever.
CHILD = """
import os, signal, threading
from nanoclaw_app.window import _on_signals
stopped = threading.Event()
with _on_signals(stopped.set):
    with stopped._cond:
        os.kill(os.getpid(), signal.SIGTERM)
        sum(range(100_000))  # the handler runs in here, with the lock held
    print("stopped" if stopped.wait(10) else "not stopped", flush=True)
"""


def test_a_signal_while_the_main_thread_holds_the_stop_events_lock_still_stops_the_app() -> None:
    try:
        result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60,
                                check=False)
    except subprocess.TimeoutExpired:
        raise AssertionError("the signal handler waited on a lock the interrupted main thread held") from None
    assert result.stdout.strip() == "stopped", result.stderr
    assert result.returncode == 0, result.stderr
