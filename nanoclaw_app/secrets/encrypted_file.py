"""An encrypted-file keyring for machines without a working OS keyring (headless servers, bare desktops).

Every secret lives in one file, ``<home>/secrets.enc`` (mode 0600), sealed with AES-GCM under a key derived from the
user's passphrase by scrypt. The header (format, scrypt parameters, random salt) is authenticated with the contents,
so a tampered file fails like a wrong passphrase. The derived key stays in this object's memory; it is never written.
A key file next to the data would only be obfuscation, which is why there is none; a user who wants the store to
unlock by itself after a reboot chooses that, and the passphrase is then kept outside the data folder
(:mod:`nanoclaw_app.secrets.machine_key`).
"""

from __future__ import annotations

import base64
import json
import os
import secrets as random
import threading
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import PasswordDeleteError

from nanoclaw_app.errors import ConfigError, UserError
from nanoclaw_app.paths import Paths

FORMAT = "nanoclaw-secrets"
MIN_PASSPHRASE = 10
SCRYPT_N = 2**17  # about 0.3 s and 128 MiB once per unlock: expensive to guess, cheap to use
_ALLOWED_N = frozenset(2**k for k in range(14, 21))  # a tampered header must not make unlocking take forever
_Contents = dict[str, dict[str, str]]  # service -> username -> value


def secrets_file(paths: Paths) -> Path:
    """Where the encrypted secrets live."""
    return paths.home / "secrets.enc"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _derive(passphrase: str, salt: bytes, n: int) -> AESGCM:
    return AESGCM(Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(passphrase.encode()))


class EncryptedFileKeyring(KeyringBackend):
    """A keyring backend over one AES-GCM sealed file; build it with :meth:`create` or :meth:`unlock` (blocking)."""

    @properties.classproperty
    def priority(cls) -> float:
        """Never picked by keyring's auto-selection: NanoClaw chooses this backend explicitly."""
        raise RuntimeError("NanoClaw's encrypted file is chosen explicitly, never automatically")

    def __init__(self, file: Path, aead: AESGCM, header: dict[str, Any]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.file = file
        self._aead = aead
        self._header = header
        self._lock = threading.Lock()  # SecretStore calls from worker threads; writes are read-modify-write

    @classmethod
    def create(cls, file: Path, passphrase: str, *, n: int = SCRYPT_N) -> EncryptedFileKeyring:
        """Start a new, empty store sealed with ``passphrase``; refuses to replace an existing one."""
        if len(passphrase) < MIN_PASSPHRASE:
            raise UserError(f"the passphrase needs at least {MIN_PASSPHRASE} characters")
        if file.exists():
            raise UserError(f"{file} already exists: unlock it with its passphrase instead")
        salt = random.token_bytes(16)
        header = {"format": FORMAT, "version": 1, "kdf": "scrypt", "n": n, "r": 8, "p": 1, "salt": _b64(salt)}
        keyring = cls(file, _derive(passphrase, salt, n), header)
        keyring._write({})
        return keyring

    @classmethod
    def unlock(cls, file: Path, passphrase: str) -> EncryptedFileKeyring:
        """Open an existing store; a wrong passphrase is a :class:`UserError` saying so."""
        header, _, _ = cls._load(file)
        keyring = cls(file, _derive(passphrase, base64.b64decode(header["salt"]), header["n"]), header)
        keyring._read()  # proves the passphrase
        return keyring

    def rekey(self, passphrase: str, *, n: int = SCRYPT_N) -> None:
        """Seal the same contents under a new passphrase (new salt); the old one stops working."""
        if len(passphrase) < MIN_PASSPHRASE:
            raise UserError(f"the passphrase needs at least {MIN_PASSPHRASE} characters")
        with self._lock:
            contents = self._read()
            salt = random.token_bytes(16)
            self._header = {**self._header, "n": n, "salt": _b64(salt)}
            self._aead = _derive(passphrase, salt, n)
            self._write(contents)

    @staticmethod
    def _load(file: Path) -> tuple[dict[str, Any], bytes, bytes]:
        """The header, nonce and sealed contents; a missing or damaged file says what to do."""
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
            header = {k: data[k] for k in ("format", "version", "kdf", "n", "r", "p", "salt")}
            nonce, sealed = base64.b64decode(data["nonce"]), base64.b64decode(data["ciphertext"])
            if len(base64.b64decode(header["salt"])) < 16 or header["n"] not in _ALLOWED_N:
                raise ValueError("unexpected key derivation parameters")
        except FileNotFoundError as err:
            raise UserError("no encrypted secret store exists yet: set a passphrase in Settings first") from err
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"{file} is damaged ({err}); restore it from a backup, or delete it and enter your "
                              "keys again") from err
        if header["format"] != FORMAT or header["version"] != 1:
            raise ConfigError(f"{file} is not a NanoClaw secret store this version can read")
        return header, nonce, sealed

    def _aad(self) -> bytes:
        return json.dumps(self._header, sort_keys=True).encode()

    def _read(self) -> _Contents:
        _, nonce, sealed = self._load(self.file)
        try:
            plain = self._aead.decrypt(nonce, sealed, self._aad())
        except InvalidTag as err:
            raise UserError("wrong passphrase for the secret store; try again (if it is lost, delete "
                            f"{self.file} and enter your keys again)") from err
        contents: _Contents = json.loads(plain)
        return contents

    def _write(self, contents: _Contents) -> None:
        nonce = random.token_bytes(12)
        sealed = self._aead.encrypt(nonce, json.dumps(contents).encode(), self._aad())
        body = json.dumps({**self._header, "nonce": _b64(nonce), "ciphertext": _b64(sealed)}, indent=1)
        self.file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.file.with_name(f"{self.file.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.file)

    def get_password(self, service: str, username: str) -> str | None:
        """The stored value, or None."""
        with self._lock:
            return self._read().get(service, {}).get(username)

    def set_password(self, service: str, username: str, password: str) -> None:
        """Store or replace a value (the whole file is resealed with a fresh nonce)."""
        with self._lock:
            contents = self._read()
            contents.setdefault(service, {})[username] = password
            self._write(contents)

    def delete_password(self, service: str, username: str) -> None:
        """Remove a value; keyring's contract is an error when there was none."""
        with self._lock:
            contents = self._read()
            if contents.get(service, {}).pop(username, None) is None:
                raise PasswordDeleteError(f"{username} is not stored")
            self._write(contents)
