"""CLI: version, db migrate, doctor, and a refused LAN bind — through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nanoclaw_app import __version__
from nanoclaw_app.cli import main


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


def test_doctor_reports_pending_migrations_then_ok(capsys: pytest.CaptureFixture[str]) -> None:
    main(["doctor", "--json"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert checks["database"]["ok"] is False
    assert "nanoclaw db migrate" in checks["database"]["fix"]
    main(["db", "migrate"])
    capsys.readouterr()
    main(["doctor", "--json"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert checks["database"]["ok"] is True
    assert checks["python"]["ok"] is True
    assert "podman" in checks


def test_serve_refuses_a_lan_address_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "refusing to listen on 0.0.0.0" in err
    assert "Traceback" not in err


def test_module_entry_point_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "nanoclaw_app", "--version"], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == f"nanoclaw {__version__}"
