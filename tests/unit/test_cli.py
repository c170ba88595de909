"""CLI: version, db migrate, doctor, the LAN bind rule, ``open`` and the options — through the real entry point."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nanoclaw_app import __version__
from nanoclaw_app.cli import _check_bind, _needs_areas, build_parser, main
from nanoclaw_app.db.database import Database
from nanoclaw_app.errors import ConfigError
from nanoclaw_app.paths import Paths
from nanoclaw_app.runfile import run_file, write_run_file
from nanoclaw_app.services.auth import WebAuth
from nanoclaw_app.settings import Settings, load_settings


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"nanoclaw {__version__}"


def test_db_migrate_then_up_to_date(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["db", "migrate"]) == 0
    assert "applied: 0001_core" in capsys.readouterr().out
    assert (tmp_path / "home" / "nanoclaw.db").is_file()
    assert main(["db", "migrate"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_doctor_says_the_first_start_creates_the_database_then_shows_its_schema(
    capsys: pytest.CaptureFixture[str]
) -> None:
    main(["doctor", "--json"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert checks["database"]["ok"] is True
    assert "the first start creates it" in checks["database"]["detail"]
    main(["db", "migrate"])
    capsys.readouterr()
    main(["doctor", "--json"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert checks["database"]["ok"] is True
    assert "(schema " in checks["database"]["detail"]
    assert checks["python"]["ok"] is True
    assert "podman" in checks


def test_serve_refuses_a_lan_address_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "refusing to listen on 0.0.0.0" in err
    assert "LAN access is off" in err
    assert "Traceback" not in err


def test_the_window_mode_refuses_a_lan_address_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--host", "192.168.1.20"]) == 2
    assert "refusing to listen on 192.168.1.20: LAN access is off" in capsys.readouterr().err


async def test_lan_access_without_a_password_is_refused(paths: Paths) -> None:
    settings = load_settings(paths, host="0.0.0.0", lan_access=True)
    with pytest.raises(ConfigError, match="LAN access has no password yet"):
        await _check_bind(settings)


async def test_lan_access_with_a_password_may_listen_on_the_network(paths: Paths, db: Database) -> None:
    await WebAuth(db).set_password("a long enough password")
    await _check_bind(load_settings(paths, host="0.0.0.0", lan_access=True))


async def test_loopback_needs_no_lan_access(settings: Settings) -> None:
    for host in ("127.0.0.1", "::1", "localhost"):
        await _check_bind(load_settings(settings.paths, host=host))


def test_bind_options_work_before_and_after_serve() -> None:
    parser = build_parser()
    assert parser.parse_args([]).port is None
    assert parser.parse_args(["--port", "9000"]).port == 9000
    assert parser.parse_args(["--port", "9000", "serve"]).port == 9000
    assert parser.parse_args(["serve", "--port", "9001", "--host", "::1"]).port == 9001
    assert parser.parse_args(["serve", "--host", "::1"]).host == "::1"


def test_open_without_a_running_app_says_how_to_start_it(capsys: pytest.CaptureFixture[str], paths: Paths) -> None:
    assert main(["open"]) == 2
    err = capsys.readouterr().err
    assert "NanoClaw is not running" in err
    assert "nanoclaw serve`" in err  # the command as it works here: from a checkout, the .venv's full path


def test_open_ignores_the_run_file_of_a_dead_process(capsys: pytest.CaptureFixture[str], paths: Paths) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_run_file(paths, "http://127.0.0.1:8765/")
    record = json.loads(run_file(paths).read_text())
    run_file(paths).write_text(json.dumps({**record, "pid": dead.pid}))
    assert main(["open"]) == 2
    assert "NanoClaw is not running" in capsys.readouterr().err


async def test_open_prints_a_one_time_link_to_the_running_app(capsys: pytest.CaptureFixture[str], paths: Paths,
                                                               db: Database) -> None:
    write_run_file(paths, "http://127.0.0.1:8765/")  # this process stands in for the running host
    assert await asyncio.to_thread(main, ["open"]) == 0
    out, err = capsys.readouterr()
    link = out.strip()
    assert link.startswith("http://127.0.0.1:8765/login?token=")
    assert "works once" in err
    auth = WebAuth(db)
    token = link.split("token=", 1)[1]
    assert await auth.redeem_link(token) is not None
    assert await auth.redeem_link(token) is None, "the link worked twice"


def test_module_entry_point_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "nanoclaw_app", "--version"], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == f"nanoclaw {__version__}"


def test_opening_the_app_or_serving_imports_no_management_command() -> None:
    probe = ("import sys\nfrom nanoclaw_app.cli import _needs_areas, build_parser\n"
             "for argv in ([], ['serve', '--port', '0'], ['--port', '9000', 'serve'], ['--host', 'agents']):\n"
             "    assert not _needs_areas(argv), argv\n"
             "    build_parser(areas=False).parse_args(argv)\n"
             "print(sorted(m for m in sys.modules if m.startswith('nanoclaw_app.commands.')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_a_management_command_a_typo_and_help_get_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert _needs_areas(["agents", "list"])
    assert _needs_areas(["--port", "9000", "agnets"])
    assert _needs_areas(["--help"])
    with pytest.raises(SystemExit):
        main(["agnets"])
    assert "'agents'" in capsys.readouterr().err


def test_the_area_names_the_cli_knows_without_importing_are_the_registered_commands() -> None:
    from nanoclaw_app.commands import AREAS, _areas

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    for area in _areas():
        area.register(sub)
    assert tuple(sub.choices) == AREAS
