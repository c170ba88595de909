"""Logging: a rotating file under <home>/logs plus the console, set up idempotently."""

from __future__ import annotations

import logging
import logging.handlers

from nanoclaw_app.logs import setup_logging
from nanoclaw_app.paths import Paths


def test_log_file_rotates_and_setup_is_idempotent(paths: Paths) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        log_file = setup_logging(paths.logs, "INFO")
        setup_logging(paths.logs, "INFO")
        ours = [h for h in root.handlers if getattr(h, "_nanoclaw", False)]
        assert len(ours) == 2
        rotating = [h for h in ours if isinstance(h, logging.handlers.RotatingFileHandler)]
        assert len(rotating) == 1
        assert rotating[0].maxBytes > 0
        assert rotating[0].backupCount > 0
        logging.getLogger("nanoclaw.test").warning("something a user should see")
        rotating[0].flush()
        assert "something a user should see" in log_file.read_text()
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
                handler.close()
