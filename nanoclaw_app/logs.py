"""Logging setup: console plus a rotating file under ``<home>/logs``. Modules use ``logging.getLogger(__name__)``."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(log_dir: Path, level: str = "INFO", *, console: bool = True) -> Path:
    """Attach the console and rotating-file handlers to the root logger once; returns the log file path."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / "nanoclaw.log"
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in list(root.handlers):
        if getattr(handler, "_nanoclaw", False):
            root.removeHandler(handler)
            handler.close()
    file_handler = logging.handlers.RotatingFileHandler(
        log_file, maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8"
    )
    handlers: list[logging.Handler] = [file_handler]
    if console:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._nanoclaw = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    # httpx logs every request at INFO: one line per forwarded model call and per engine call is noise.
    logging.getLogger("httpx").setLevel(max(root.level, logging.WARNING))
    # The Telegram library's debug lines carry request URLs, which contain the bot token: never below INFO.
    for name in ("telegram", "httpcore"):
        logging.getLogger(name).setLevel(max(root.level, logging.INFO))
    return log_file
