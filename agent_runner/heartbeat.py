"""The liveness signal: the runner touches ``.heartbeat`` and the host judges it by the file's age.

A file's mtime rather than a DB write: it is cheap enough to do on every provider event, and it never contends with
the host for a database lock.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class Heartbeat:
    """Touches one file; a failure is logged once per streak (a full disk must not flood the log)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._failing = False

    def beat(self) -> None:
        """Mark the runner alive now."""
        try:
            try:
                os.utime(self.path)
            except FileNotFoundError:
                self.path.touch()
        except OSError as err:
            if not self._failing:
                log.warning("cannot touch the heartbeat %s: %s (the host may think this runner is stuck)",
                            self.path, err)
            self._failing = True
            return
        self._failing = False


__all__ = ["Heartbeat"]
