"""Logging setup: console plus a rotating file under ``<home>/logs``. Modules use ``logging.getLogger(__name__)``."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from nanoclaw_app.text_safety import escape_controls

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class SafeFormatter(logging.Formatter):
    """Writes control and bidirectional characters as escapes, so one record is one honest line.

    Log arguments carry names and texts from chats, agents and requests; raw, a line break forges a log line, an
    escape sequence repaints the terminal, an override hides a file's real type. Escaping here, in the one formatter
    every handler uses, covers every call site. A traceback keeps its line breaks and nothing else.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The record's line with its message escaped."""
        return escape_controls(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        """The line, and a traceback with its line breaks kept (another handler may have cached it raw)."""
        cached = record.exc_text
        if record.exc_info and not cached:
            cached = record.exc_text = self.formatException(record.exc_info)
        if cached:
            record.exc_text = escape_controls(cached, keep_newlines=True)
        try:
            return super().format(record)
        finally:
            record.exc_text = cached

    def formatStack(self, stack_info: str) -> str:
        """The stack, line breaks kept."""
        return escape_controls(super().formatStack(stack_info), keep_newlines=True)


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
        handler.setFormatter(SafeFormatter(FORMAT))
        handler._nanoclaw = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    # httpx logs every request at INFO: one line per forwarded model call and per engine call is noise.
    logging.getLogger("httpx").setLevel(max(root.level, logging.WARNING))
    # The Telegram library's debug lines carry request URLs, which contain the bot token: never below INFO.
    for name in ("telegram", "httpcore"):
        logging.getLogger(name).setLevel(max(root.level, logging.INFO))
    return log_file
