"""Which secret backend is used: a working OS keyring, else the encrypted file with a passphrase, never plaintext."""

from __future__ import annotations

import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null
from keyring.compat import properties

from nanoclaw_app.paths import Paths
from nanoclaw_app.secrets.backend import choose_backend, choose_os_keyring, encrypted_store_exists
from nanoclaw_app.secrets.encrypted_file import EncryptedFileKeyring, secrets_file
from tests.fakes.keyring import MemoryKeyring

PASSPHRASE = "correct horse battery"


def no_keyring() -> KeyringBackend:
    """keyring's stand-in when nothing is installed (raises on every call)."""
    return fail.Keyring()  # type: ignore[no-untyped-call]


class _NotAutoSelected(MemoryKeyring):
    @properties.classproperty
    def priority(cls) -> float:  # type: ignore[override]
        raise RuntimeError("only for these tests: keyring's own auto-selection must never pick it")


class PlaintextKeyring(_NotAutoSelected):
    """Named like keyrings.alt's base64 file backend, which must never be used."""


class BrokenKeyring(_NotAutoSelected):
    """An OS keyring that exists but refuses to store (a locked or absent daemon)."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise RuntimeError("Failed to create the collection: Prompt dismissed.")


def test_a_working_os_keyring_is_used() -> None:
    memory = MemoryKeyring()
    backend, reason = choose_os_keyring(memory)
    assert backend is memory
    assert reason == ""
    assert memory.values == {}  # the probe cleaned up after itself


@pytest.mark.parametrize("refused", [PlaintextKeyring(), no_keyring(), null.Keyring()])  # type: ignore[no-untyped-call]
def test_plaintext_and_dummy_backends_are_refused(refused: KeyringBackend) -> None:
    backend, reason = choose_os_keyring(refused)
    assert backend is None
    assert "no OS keyring" in reason


def test_a_keyring_that_fails_its_probe_is_refused_with_the_reason() -> None:
    backend, reason = choose_os_keyring(BrokenKeyring())
    assert backend is None
    assert "Prompt dismissed" in reason


def test_the_os_keyring_wins_when_no_encrypted_file_exists(paths: Paths) -> None:
    memory = MemoryKeyring()
    backend, _ = choose_backend(paths, PASSPHRASE, os_keyring=memory)
    assert backend is memory
    assert not encrypted_store_exists(paths)


def test_without_an_os_keyring_or_passphrase_the_reason_says_to_set_one(paths: Paths) -> None:
    backend, reason = choose_backend(paths, None, os_keyring=no_keyring())
    assert backend is None
    assert "set a passphrase in Settings" in reason
    assert not encrypted_store_exists(paths)


def test_a_passphrase_creates_the_encrypted_file_then_unlocks_it(paths: Paths) -> None:
    backend, reason = choose_backend(paths, PASSPHRASE, os_keyring=no_keyring())
    assert isinstance(backend, EncryptedFileKeyring), reason
    backend.set_password("nanoclaw", "anthropic_api_key", "sk-1")
    assert encrypted_store_exists(paths)

    again, _ = choose_backend(paths, PASSPHRASE, os_keyring=no_keyring())
    assert isinstance(again, EncryptedFileKeyring)
    assert again.get_password("nanoclaw", "anthropic_api_key") == "sk-1"


def test_an_existing_file_stays_locked_without_its_passphrase_even_with_a_working_os_keyring(paths: Paths) -> None:
    EncryptedFileKeyring.create(secrets_file(paths), PASSPHRASE, n=2**14)
    backend, reason = choose_backend(paths, None, os_keyring=MemoryKeyring())
    assert backend is None
    assert "unlock it in the app" in reason


def test_a_wrong_passphrase_leaves_the_store_closed_with_a_reason(paths: Paths) -> None:
    EncryptedFileKeyring.create(secrets_file(paths), PASSPHRASE, n=2**14)
    backend, reason = choose_backend(paths, "wrong passphrase!", os_keyring=no_keyring())
    assert backend is None
    assert "wrong passphrase" in reason
