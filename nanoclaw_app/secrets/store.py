"""Named secrets behind one small async API, with values cached in the host process after the first read.

The model gateway reads a key on every forwarded call, and some keyring backends take a D-Bus round trip or an Argon2
derivation per read; the cache keeps that off the hot path. Which backend is used is decided by the composition root
(the OS keyring when a probe works; never a plaintext file).
"""

from __future__ import annotations

import asyncio
import logging

from keyring.backend import KeyringBackend
from keyring.errors import KeyringError

from nanoclaw_app.errors import ConfigError
from nanoclaw_app.secrets.encrypted_file import EncryptedFileKeyring

log = logging.getLogger(__name__)

SERVICE = "nanoclaw"


class SecretsUnavailable(ConfigError):
    """No store is open (locked, or none set up yet): what needs a secret waits until the user opens one."""


class SecretStore:
    """Get, set and delete secrets by name in one keyring backend."""

    def __init__(self, backend: KeyringBackend | None, *, unavailable_reason: str = "") -> None:
        self._backend = backend
        self._reason = unavailable_reason or "no secure secret store is set up"
        self._cache: dict[str, str | None] = {}
        self._lock = asyncio.Lock()

    def set_backend(self, backend: KeyringBackend | None, unavailable_reason: str = "") -> None:
        """Switch to another backend (chosen at host start, or by the user); forgets cached values."""
        self._backend = backend
        self._reason = unavailable_reason or "no secure secret store is set up"
        self._cache.clear()

    @property
    def unavailable_reason(self) -> str:
        """Why secrets cannot be used (empty when they can)."""
        return "" if self._backend is not None else self._reason

    @property
    def backend_kind(self) -> str:
        """``os_keyring``, ``encrypted_file`` or ``none`` (for the settings page and ``nanoclaw secrets status``)."""
        if self._backend is None:
            return "none"
        return "encrypted_file" if isinstance(self._backend, EncryptedFileKeyring) else "os_keyring"

    @property
    def backend_name(self) -> str:
        """The backend as a person would name it (``SecretService Keyring``, the encrypted file's path), or ``""``."""
        if self._backend is None:
            return ""
        if isinstance(self._backend, EncryptedFileKeyring):
            return str(self._backend.file)
        return str(type(self._backend).name)

    @property
    def encrypted_file(self) -> EncryptedFileKeyring | None:
        """The encrypted file in use, if that is the backend (to change its passphrase)."""
        return self._backend if isinstance(self._backend, EncryptedFileKeyring) else None

    @property
    def available(self) -> bool:
        """Whether secrets can be read and written."""
        return self._backend is not None

    def _require(self) -> KeyringBackend:
        if self._backend is None:
            raise SecretsUnavailable(f"cannot use secrets: {self._reason}")
        return self._backend

    async def get(self, name: str) -> str | None:
        """The secret's value, or None when it is not set."""
        if name in self._cache:
            return self._cache[name]
        backend = self._require()
        async with self._lock:
            if name not in self._cache:
                try:
                    self._cache[name] = await asyncio.to_thread(backend.get_password, SERVICE, name)
                except KeyringError as err:
                    raise ConfigError(f"cannot read secret {name!r} from the keyring: {err}") from err
        return self._cache[name]

    async def set(self, name: str, value: str) -> None:
        """Store (or replace) a secret."""
        if not value:
            raise ConfigError(f"secret {name!r} cannot be empty")
        backend = self._require()
        try:
            await asyncio.to_thread(backend.set_password, SERVICE, name, value)
        except KeyringError as err:
            raise ConfigError(f"cannot store secret {name!r} in the keyring: {err}") from err
        self._cache[name] = value
        log.info("secret %s stored", name)

    async def delete(self, name: str) -> None:
        """Remove a secret; no error when it was not set."""
        backend = self._require()
        try:
            await asyncio.to_thread(backend.delete_password, SERVICE, name)
        except KeyringError as err:
            if await asyncio.to_thread(backend.get_password, SERVICE, name) is not None:
                raise ConfigError(f"cannot delete secret {name!r} from the keyring: {err}") from err
        self._cache[name] = None
        log.info("secret %s deleted", name)
