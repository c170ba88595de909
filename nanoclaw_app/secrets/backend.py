"""Choosing the keyring backend explicitly: auto-selection can land on a plaintext file or on one that fails later.

The OS keyring is used only when a set/get/delete probe works. Where none works, secrets go to an encrypted file
unlocked by the user's passphrase (typed in the app, kept by this computer when the user chose automatic unlocking,
or ``NANOCLAW_SECRETS_PASSPHRASE`` on a headless server). Anything
that stores secrets in plain text is refused.
"""

from __future__ import annotations

import logging

import keyring
from keyring.backend import KeyringBackend

from nanoclaw_app.errors import NanoClawError
from nanoclaw_app.ids import short_code
from nanoclaw_app.paths import Paths
from nanoclaw_app.secrets import machine_key
from nanoclaw_app.secrets.encrypted_file import EncryptedFileKeyring, secrets_file

log = logging.getLogger(__name__)

PROBE_SERVICE = "nanoclaw-probe"
PASSPHRASE_ENV = "NANOCLAW_SECRETS_PASSPHRASE"  # noqa: S105 - the variable's name, not a passphrase
_REFUSED = ("fail", "null", "PlaintextKeyring", "Base64", "Unencrypted")


def probe(backend: KeyringBackend) -> str | None:
    """None when a set/get/delete round trip works, else why not (blocking: call it in a thread)."""
    value = short_code(8)
    try:
        backend.set_password(PROBE_SERVICE, "probe", value)
        got = backend.get_password(PROBE_SERVICE, "probe")
        backend.delete_password(PROBE_SERVICE, "probe")
    except Exception as err:  # each backend raises its own kinds (KeyringError, InitError, D-Bus errors, ...)
        return f"{type(backend).__name__}: {err}"
    if got != value:
        return f"{type(backend).__name__} did not return what was stored"
    return None


def choose_os_keyring(backend: KeyringBackend | None = None) -> tuple[KeyringBackend | None, str]:
    """The working OS keyring (``backend``, else keyring's pick), or None and the reason (blocking)."""
    if backend is None:
        backend = keyring.get_keyring()
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    if any(part in name for part in _REFUSED):
        return None, f"no OS keyring is available here ({name})"
    problem = probe(backend)
    if problem is not None:
        return None, f"the OS keyring does not work: {problem}"
    log.info("secrets are kept in %s", name)
    return backend, ""


def encrypted_store_exists(paths: Paths) -> bool:
    """Whether an encrypted secret file exists (the UI then asks to unlock it, not to create a passphrase)."""
    return secrets_file(paths).exists()


def choose_backend(
    paths: Paths, passphrase: str | None, *, os_keyring: KeyringBackend | None = None
) -> tuple[KeyringBackend | None, str]:
    """The secret backend to use, or None and what the user must do (blocking: call it in a thread).

    An existing encrypted file wins over the OS keyring: the secrets are in it, and an OS keyring that works today but
    did not when the file was made must not hide them. Otherwise the OS keyring when its probe works; otherwise the
    encrypted file, created or unlocked with ``passphrase`` or, when the user chose that, the passphrase this
    computer keeps (:mod:`machine_key`).
    """
    file = secrets_file(paths)
    if not file.exists():
        backend, reason = choose_os_keyring(os_keyring)
        if backend is not None:
            return backend, ""
        if passphrase is None:
            return None, f"{reason}; set a passphrase in Settings to keep secrets in an encrypted file instead"
    elif passphrase is None:
        passphrase = machine_key.recall(paths)
        if passphrase is None:
            return None, "the encrypted secret store needs its passphrase: unlock it in the app"
    try:
        if file.exists():
            chosen = EncryptedFileKeyring.unlock(file, passphrase)
        else:
            chosen = EncryptedFileKeyring.create(file, passphrase)
    except NanoClawError as err:
        log.warning("secrets: cannot open %s: %s", file, err)
        return None, f"cannot open the encrypted secret store: {err}; unlock it in Settings"
    log.info("secrets are kept in the encrypted file %s", file)
    return chosen, ""
