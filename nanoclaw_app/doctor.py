"""``nanoclaw doctor``: checks a user can act on, each with what to do when it fails."""

from __future__ import annotations

import shutil
import sqlite3
import sys
from dataclasses import dataclass
from typing import Any

from nanoclaw_app.channels import registry
from nanoclaw_app.channels.manifest import ChannelManifest
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.migrate import applied_versions, discover
from nanoclaw_app.errors import ConfigError
from nanoclaw_app.paths import Paths
from nanoclaw_app.runfile import read_run_file
from nanoclaw_app.runtime.podman_probe import probe
from nanoclaw_app.settings import Settings, load_settings


@dataclass(frozen=True, slots=True)
class Check:
    """One doctor line."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True
    data: dict[str, Any] | None = None
    """Numbers behind the line, for ``--json`` (``doctor --live`` has its latencies here)."""


async def run_checks(paths: Paths) -> list[Check]:
    """Run every check; never raises."""
    checks: list[Check] = []
    version = ".".join(map(str, sys.version_info[:3]))
    checks.append(Check("python", sys.version_info >= (3, 11), version, "install Python 3.11 or newer"))
    checks.append(Check("sqlite", sqlite3.sqlite_version_info >= (3, 35), sqlite3.sqlite_version,
                        "SQLite 3.35+ is needed"))
    try:
        settings = load_settings(paths)
        checks.append(Check("settings", True, f"timezone {settings.timezone}, {_web(paths, settings)}"))
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
    checks.append(await _podman(paths))
    for manifest in registry.CHANNELS:
        check = await _channel_library(manifest)
        if check is not None:
            checks.append(check)
    return checks


async def _channel_library(manifest: ChannelManifest) -> Check | None:
    """A channel's own check (WhatsApp: whether its native library loads; a frozen build must carry it)."""
    if manifest.self_check is None:
        return None
    try:
        found = await manifest.self_check()
    except Exception as err:  # the check itself broke: say so rather than crash the doctor
        return Check(manifest.name, False, f"the {manifest.title} check failed: {err}", "reinstall NanoClaw",
                     required=False)
    return Check(manifest.name, found.ok, found.detail, found.fix, required=False)


def _web(paths: Paths, settings: Settings) -> str:
    """Where the app is: the running host's own address (its run file), else where it will listen."""
    record = read_run_file(paths)
    url = record.get("url") if record else None
    if isinstance(url, str) and url:
        return f"app running at {url}"
    return f"web {settings.host}:{settings.port} (not running)"


async def _database(paths: Paths) -> Check:
    """The central database; migrations not applied yet are no failure, since every start applies them first."""
    try:
        migrations = discover()
        if not paths.central_db.exists():
            return Check("database", True, f"not created yet: the first start creates it and applies its "
                                           f"{len(migrations)} migrations")
        async with Database(paths.central_db) as db:
            done = await applied_versions(db)
    except Exception as err:  # any failure to open is worth reporting, not crashing on
        return Check("database", False, f"{paths.central_db}: {err}", "move the file aside and restart")
    pending = [m for m in migrations if m.version not in done]
    schema = f"{paths.central_db} (schema {max(done) if done else 0})"
    if pending:
        return Check("database", True, f"{schema}; {len(pending)} migration(s) pending, the next start applies them")
    return Check("database", True, schema)


async def _podman(paths: Paths) -> Check:
    """Podman the way the host would use it: installed, which version, rootless or not, and whether it answers.

    When no engine runs, a service is started for the check and stopped again, so a pass means the host can start
    containers. Required only when agents are set to run in Podman.
    """
    try:
        settings = load_settings(paths)
        configured_url, required = settings.podman_url, settings.runtime == "podman"
    except ConfigError:
        configured_url, required = "", True  # the settings line already reports the broken file
    try:
        result = await probe(configured_url=configured_url, run_dir=paths.run)
    except Exception as err:  # the doctor reports, never crashes
        return Check("podman", False, f"checking Podman failed: {err}", "run `podman info`", required=required)
    if result.endpoint is None:
        detail = result.problem if not result.client_version else f"{result.client_version}; {result.problem}"
        return Check("podman", False, detail, result.fix, required=required)
    endpoint = result.endpoint
    where = f"machine {endpoint.machine}" if endpoint.machine else endpoint.url.removeprefix("unix://")
    started = " (started briefly for this check)" if endpoint.started_service else ""
    detail = (f"{result.client_version or 'podman'}, {'rootless' if endpoint.rootless else 'rootful'}, "
              f"engine {result.engine_version or '?'} answers at {where}{started}")
    return Check("podman", True, detail, required=required)


def render(checks: list[Check]) -> str:
    """Human-readable report, one line per check."""
    lines = []
    for check in checks:
        mark = "ok  " if check.ok else ("FAIL" if check.required else "warn")
        detail = check.detail.replace("\n", "\n       ")
        line = f"[{mark}] {check.name}: {detail}"
        if not check.ok and check.fix:
            line += f"\n       fix: {check.fix}"
        lines.append(line)
    return "\n".join(lines)
