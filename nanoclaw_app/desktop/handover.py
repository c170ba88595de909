"""A second launch of the app: bring the running one's window forward instead of starting a second host."""

from __future__ import annotations

import logging

from nanoclaw_app.desktop.control import send_command
from nanoclaw_app.desktop.instance import InstanceLock, already_running_sentence, wait_for_holder

log = logging.getLogger(__name__)


def hand_over(lock: InstanceLock, *, background: bool) -> bool:
    """Tell the running instance to show itself; False when the lock turned out free (the caller goes on to start).

    ``background`` (a start at login) shows nothing: the app is already running, which is all that start wanted.
    """
    record = wait_for_holder(lock)
    if record is None:
        if lock.held:
            return False  # the other one ended while we waited: this launch becomes the app
        print(f"nanoclaw: {already_running_sentence(lock.paths)}", flush=True)
        return True
    if background:
        log.info("NanoClaw already runs (process %d); the start at login has nothing to do", record.pid)
        return True
    reply = send_command(record, "show") if record.kind == "window" else None
    if reply is not None and reply.get("window"):
        log.info("NanoClaw already runs (process %d); its window was brought forward", record.pid)
        print("NanoClaw is already running; its window is in front now.", flush=True)
        return True
    print(f"nanoclaw: {already_running_sentence(lock.paths)}", flush=True)
    return True
