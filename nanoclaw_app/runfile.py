"""``<home>/run/web.json``: where the running host serves the app, so ``nanoclaw open`` can print a link to it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from nanoclaw_app.paths import Paths
from nanoclaw_app.processes import pid_alive


def run_file(paths: Paths) -> Path:
    """The file's path."""
    return paths.run / "web.json"


def write_run_file(paths: Paths, url: str, run: str = "") -> None:
    """Record the URL, our pid and the host's run id (mode 0600; replaced atomically)."""
    file = run_file(paths)
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid(), "run": run}), encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(file)


def remove_run_file(paths: Paths) -> None:
    """Forget it at a clean stop."""
    run_file(paths).unlink(missing_ok=True)


def read_run_file(paths: Paths) -> dict[str, object] | None:
    """The running host's record, or None when no host runs (a stale file of a dead pid counts as none)."""
    file = run_file(paths)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    record: dict[str, object] = data
    pid = record.get("pid")
    if not isinstance(pid, int):
        return None
    if not pid_alive(pid):
        return None
    return record
