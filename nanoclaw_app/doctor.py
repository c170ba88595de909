"""``nanoclaw doctor``: checks a user can act on, each with what to do when it fails."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass

from nanoclaw_app.db.database import Database
from nanoclaw_app.db.migrate import applied_versions, discover
from nanoclaw_app.errors import ConfigError
from nanoclaw_app.paths import Paths
from nanoclaw_app.settings import load_settings


@dataclass(frozen=True, slots=True)
class Check:
    """One doctor line."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


async def run_checks(paths: Paths) -> list[Check]:
    """Run every check; never raises."""
    checks: list[Check] = []
    version = ".".join(map(str, sys.version_info[:3]))
    checks.append(Check("python", sys.version_info >= (3, 11), version, "install Python 3.11 or newer"))
    checks.append(Check("sqlite", sqlite3.sqlite_version_info >= (3, 35), sqlite3.sqlite_version,
                        "SQLite 3.35+ is needed"))
    try:
        settings = load_settings(paths)
        checks.append(Check("settings", True, f"timezone {settings.timezone}, web {settings.host}:{settings.port}"))
    except ConfigError as err:
        checks.append(Check("settings", False, str(err), f"edit or delete {paths.settings_file}"))
    try:
        paths.ensure()
        probe = paths.home / ".doctor-probe"
        probe.write_text("ok", encoding="utf-8")
        probe.unlink()
        free = shutil.disk_usage(paths.home).free / 2**30
        checks.append(Check("home", free > 1, f"{paths.home} ({free:.1f} GiB free)", "free some disk space"))
    except OSError as err:
        checks.append(Check("home", False, f"{paths.home}: {err}", "set NANOCLAW_HOME to a writable folder"))
        return checks
    checks.append(await _database(paths))
    checks.append(_podman())
    return checks


async def _database(paths: Paths) -> Check:
    try:
        async with Database(paths.central_db) as db:
            done = await applied_versions(db)
        pending = [m for m in discover() if m.version not in done]
    except Exception as err:  # any failure to open is worth reporting, not crashing on
        return Check("database", False, f"{paths.central_db}: {err}", "move the file aside and restart")
    if pending:
        return Check("database", False, f"{len(pending)} migration(s) pending", "run `nanoclaw db migrate`")
    return Check("database", True, f"{paths.central_db} (schema {max(done) if done else 0})")


def _podman() -> Check:
    exe = shutil.which("podman")
    if exe is None:
        return Check(
            "podman", False, "not installed; agents run in Podman containers",
            "install Podman (Debian/Ubuntu: sudo apt install podman)", required=False,
        )
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10, check=True)  # noqa: S603
    except (OSError, subprocess.SubprocessError) as err:
        return Check("podman", False, f"{exe} does not run: {err}", "reinstall Podman", required=False)
    return Check("podman", True, out.stdout.strip(), required=False)


def render(checks: list[Check]) -> str:
    """Human-readable report, one line per check."""
    lines = []
    for check in checks:
        mark = "ok  " if check.ok else ("FAIL" if check.required else "warn")
        line = f"[{mark}] {check.name}: {check.detail}"
        if not check.ok and check.fix:
            line += f"\n       fix: {check.fix}"
        lines.append(line)
    return "\n".join(lines)
