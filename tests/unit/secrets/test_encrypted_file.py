"""The encrypted-file keyring: secrets survive a reopen, stay unreadable on disk, and a wrong passphrase says so."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import keyring
import pytest
from keyring.errors import PasswordDeleteError

from nanoclaw_app.errors import ConfigError, UserError
from nanoclaw_app.secrets.encrypted_file import EncryptedFileKeyring

PASSPHRASE = "correct horse battery"
VALUE = "sk-ant-very-secret-value-123"
FAST = 2**14  # scrypt cost for tests; the file records it, so unlock uses the same


@pytest.fixture
def file(tmp_path: Path) -> Path:
    return tmp_path / "home" / "secrets.enc"


def test_a_secret_survives_closing_and_unlocking_again(file: Path) -> None:
    store = EncryptedFileKeyring.create(file, PASSPHRASE, n=FAST)
    store.set_password("nanoclaw", "anthropic_api_key", VALUE)
    store.set_password("nanoclaw", "telegram_bot_token", "123:abc")

    again = EncryptedFileKeyring.unlock(file, PASSPHRASE)
    assert again.get_password("nanoclaw", "anthropic_api_key") == VALUE
    assert again.get_password("nanoclaw", "telegram_bot_token") == "123:abc"
    assert again.get_password("nanoclaw", "missing") is None
    again.delete_password("nanoclaw", "telegram_bot_token")
    assert EncryptedFileKeyring.unlock(file, PASSPHRASE).get_password("nanoclaw", "telegram_bot_token") is None
    with pytest.raises(PasswordDeleteError):
        again.delete_password("nanoclaw", "telegram_bot_token")


def test_a_wrong_passphrase_is_a_clear_user_error(file: Path) -> None:
    EncryptedFileKeyring.create(file, PASSPHRASE, n=FAST).set_password("nanoclaw", "k", VALUE)
    with pytest.raises(UserError) as info:
        EncryptedFileKeyring.unlock(file, "not the passphrase")
    message = str(info.value)
    assert "wrong passphrase" in message
    assert "MAC" not in message
    assert "InvalidTag" not in message


def test_the_file_is_private_and_never_holds_the_value_or_the_passphrase(file: Path) -> None:
    store = EncryptedFileKeyring.create(file, PASSPHRASE, n=FAST)
    store.set_password("nanoclaw", "anthropic_api_key", VALUE)
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    raw = file.read_bytes()
    for secret in (VALUE, PASSPHRASE, "anthropic_api_key"):
        assert secret.encode() not in raw
        assert base64.b64encode(secret.encode())[:12] not in raw
    assert not list(file.parent.glob("*.tmp"))  # the atomic write left nothing behind


def test_each_write_uses_a_fresh_nonce(file: Path) -> None:
    store = EncryptedFileKeyring.create(file, PASSPHRASE, n=FAST)
    store.set_password("nanoclaw", "k", VALUE)
    first = json.loads(file.read_text())
    store.set_password("nanoclaw", "k", VALUE)
    second = json.loads(file.read_text())
    assert first["salt"] == second["salt"]
    assert first["nonce"] != second["nonce"]


def test_a_tampered_header_fails_like_a_wrong_passphrase(file: Path) -> None:
    EncryptedFileKeyring.create(file, PASSPHRASE, n=FAST)
    data = json.loads(file.read_text())
    data["r"] = 9  # the header is authenticated with the contents
    file.write_text(json.dumps(data))
    with pytest.raises(UserError, match="wrong passphrase"):
        EncryptedFileKeyring.unlock(file, PASSPHRASE)


def test_a_damaged_file_says_how_to_recover(file: Path) -> None:
    file.parent.mkdir(parents=True)
    file.write_text("not json")
    with pytest.raises(ConfigError, match="damaged"):
        EncryptedFileKeyring.unlock(file, PASSPHRASE)


def test_a_header_asking_for_an_absurd_key_derivation_cost_is_refused_before_deriving(file: Path) -> None:
    EncryptedFileKeyring.create(file, PASSPHRASE, n=FAST)
    data = json.loads(file.read_text())
    data["n"] = 2**30  # would need a terabyte of memory
    file.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="damaged"):
        EncryptedFileKeyring.unlock(file, PASSPHRASE)


def test_create_refuses_short_passphrases_and_an_existing_store(file: Path) -> None:
    with pytest.raises(UserError, match="at least 10"):
        EncryptedFileKeyring.create(file, "short", n=FAST)
    assert not file.exists()
    EncryptedFileKeyring.create(file, PASSPHRASE, n=FAST)
    with pytest.raises(UserError, match="already exists"):
        EncryptedFileKeyring.create(file, "another passphrase", n=FAST)


def test_unlocking_a_missing_store_says_to_set_a_passphrase(file: Path) -> None:
    with pytest.raises(UserError, match="set a passphrase"):
        EncryptedFileKeyring.unlock(file, PASSPHRASE)


def test_keyring_never_picks_it_on_its_own() -> None:
    assert EncryptedFileKeyring not in set(keyring.backend.KeyringBackend.get_viable_backends())
