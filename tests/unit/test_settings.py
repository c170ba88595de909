"""Settings: typed, frozen, NANOCLAW_HOME isolation, env overrides, and a clear error for bad values."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from nanoclaw_app.errors import ConfigError
from nanoclaw_app.paths import Paths, resource
from nanoclaw_app.settings import Settings, load_settings, save_settings


def test_home_comes_from_nanoclaw_home(tmp_path: Path) -> None:
    paths = Paths.from_env()
    assert paths.home == (tmp_path / "home").resolve()
    assert paths.central_db == paths.home / "nanoclaw.db"
    assert paths.mount_allowlist.parent == paths.config
    assert not paths.mount_allowlist.is_relative_to(paths.home)


def test_settings_are_frozen(settings: Settings) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


def test_file_then_env_then_overrides(paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    paths.settings_file.write_text(json.dumps({"port": 9000, "timezone": "Asia/Tokyo", "unknown_key": 1}))
    assert load_settings(paths).port == 9000
    monkeypatch.setenv("NANOCLAW_PORT", "9100")
    assert load_settings(paths).port == 9100
    assert load_settings(paths, port=9200).port == 9200
    assert load_settings(paths).timezone == "Asia/Tokyo"


def test_bad_values_get_a_fix_it_message(paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NANOCLAW_PORT", "eighty")
    with pytest.raises(ConfigError, match=r"port.*must be a whole number"):
        load_settings(paths)
    monkeypatch.delenv("NANOCLAW_PORT")
    with pytest.raises(ConfigError, match="IANA"):
        load_settings(paths, timezone="Mars/Olympus")
    with pytest.raises(ConfigError, match="'container_standby' must be 0"):
        load_settings(paths, container_standby=-1)
    paths.settings_file.write_text("{not json")
    with pytest.raises(ConfigError, match="Fix or delete"):
        load_settings(paths)


def test_save_settings_merges_and_refuses_unknown(paths: Paths) -> None:
    save_settings(paths, {"port": 9300})
    save_settings(paths, {"timezone": "UTC"})
    assert json.loads(paths.settings_file.read_text()) == {"port": 9300, "timezone": "UTC"}
    with pytest.raises(ConfigError, match="unknown setting"):
        save_settings(paths, {"api_key": "x"})


def test_every_setting_is_documented() -> None:
    source = Path(__file__).resolve().parents[2] / "nanoclaw_app" / "settings.py"
    text = source.read_text()
    for field in dataclasses.fields(Settings):
        if field.name == "paths":
            continue
        assert f'    {field.name}:' in text
        after = text.split(f"    {field.name}:", 1)[1].splitlines()[1].strip()
        assert after.startswith('"""'), f"setting {field.name} has no docstring"


def test_migrations_are_found_as_a_resource() -> None:
    assert (resource("nanoclaw_app", "db", "migrations") / "0001_core.sql").is_file()
