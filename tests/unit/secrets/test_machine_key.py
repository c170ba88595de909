"""Automatic unlocking: the passphrase kept by this computer, outside the data folder, read back only when it is
the user's own private file (never through a link, never one others can read)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from keyring.backends import fail

from nanoclaw_app.errors import ConfigError
from nanoclaw_app.paths import Paths
from nanoclaw_app.secrets import machine_key
from nanoclaw_app.secrets.backend import choose_backend
from nanoclaw_app.secrets.encrypted_file import EncryptedFileKeyring, secrets_file

PASSPHRASE = "correct horse battery"


@pytest.fixture
def no_systemd_creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine_key, "_systemd_creds", lambda: None)


def files_holding(root: Path, text: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def test_where_systemd_creds_cannot_be_used_a_private_key_file_in_the_config_folder(
    paths: Paths, no_systemd_creds: None
) -> None:
    assert machine_key.remember(paths, PASSPHRASE) == "key file"
    file = machine_key.key_file(paths)
    assert file.parent == paths.config
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert machine_key.recall(paths) == PASSPHRASE
    assert machine_key.method(paths) == "key file"
    assert files_holding(paths.home, PASSPHRASE) == []  # nothing in the data folder, whose folders agents reach
    machine_key.forget(paths)
    assert machine_key.recall(paths) is None
    assert machine_key.method(paths) is None


def test_with_systemd_creds_where_it_works_the_passphrase_is_sealed_not_written(paths: Paths) -> None:
    # Root on systemd machines (this CI): sealed with the machine's key. A normal user before systemd 256: the key file.
    how = machine_key.remember(paths, PASSPHRASE)
    assert how == ("systemd-creds" if os.geteuid() == 0 and shutil.which("systemd-creds") else how)
    if how == "systemd-creds":
        assert files_holding(paths.config, PASSPHRASE) == []
    assert files_holding(paths.home, PASSPHRASE) == []
    assert machine_key.recall(paths) == PASSPHRASE


def test_a_link_in_place_of_the_key_file_is_not_followed(paths: Paths, tmp_path: Path, no_systemd_creds: None) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text(PASSPHRASE)
    elsewhere.chmod(0o600)
    paths.config.mkdir(parents=True, exist_ok=True)
    machine_key.key_file(paths).symlink_to(elsewhere)
    assert machine_key.recall(paths) is None


def test_a_key_file_others_can_read_is_ignored(paths: Paths, no_systemd_creds: None) -> None:
    machine_key.remember(paths, PASSPHRASE)
    machine_key.key_file(paths).chmod(0o644)
    assert machine_key.recall(paths) is None


def test_a_config_folder_inside_the_data_folder_is_refused(tmp_path: Path, no_systemd_creds: None) -> None:
    inside = Paths(home=tmp_path / "home", config=tmp_path / "home" / "config")
    with pytest.raises(ConfigError, match="inside the data folder"):
        machine_key.remember(inside, PASSPHRASE)
    assert not (tmp_path / "home" / "config" / "secrets.key").exists()


def test_at_start_the_kept_passphrase_unlocks_the_store_with_nothing_typed(paths: Paths,
                                                                            no_systemd_creds: None) -> None:
    store = EncryptedFileKeyring.create(secrets_file(paths), PASSPHRASE, n=2**14)
    store.set_password("nanoclaw", "anthropic_api_key", "sk-ant-test")
    locked, reason = choose_backend(paths, None, os_keyring=fail.Keyring())  # type: ignore[no-untyped-call]
    assert locked is None
    assert "unlock it in the app" in reason
    machine_key.remember(paths, PASSPHRASE)
    backend, _ = choose_backend(paths, None, os_keyring=fail.Keyring())  # type: ignore[no-untyped-call]
    assert backend is not None
    assert backend.get_password("nanoclaw", "anthropic_api_key") == "sk-ant-test"


def test_a_new_passphrase_reseals_the_same_secrets(paths: Paths) -> None:
    store = EncryptedFileKeyring.create(secrets_file(paths), PASSPHRASE, n=2**14)
    store.set_password("nanoclaw", "anthropic_api_key", "sk-ant-test")
    store.rekey("a brand new passphrase", n=2**14)
    assert EncryptedFileKeyring.unlock(secrets_file(paths), "a brand new passphrase").get_password(
        "nanoclaw", "anthropic_api_key") == "sk-ant-test"
    with pytest.raises(Exception, match="wrong passphrase"):
        EncryptedFileKeyring.unlock(secrets_file(paths), PASSPHRASE)
