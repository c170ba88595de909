"""Unlock the encrypted secret store automatically on this computer, when the user chose to.

The store's passphrase is kept where only this computer (and this user) can read it, so a reboot of a home server
does not leave the assistant locked:

- ``systemd-creds``, where it works for this user (root on systemd machines): the passphrase is sealed with the
  machine's own credential key (and its TPM, when there is one), so a copy of the file is useless elsewhere;
- otherwise a key file readable only by the user, in the *config* folder: never in the data folder, which holds the
  folders mounted into agent containers, and never mounted itself.

The trade-off, said to the user where they choose it: anyone who can sign in to this computer as them can read their
keys. The passphrase stays usable by hand (and ``NANOCLAW_SECRETS_PASSPHRASE`` on servers).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import subprocess
from pathlib import Path

from nanoclaw_app.errors import ConfigError
from nanoclaw_app.paths import Paths

log = logging.getLogger(__name__)

CREDENTIAL_NAME = "nanoclaw-secrets"
SYSTEMD_CREDS_TIMEOUT = 20.0
MAX_KEY_BYTES = 4096


def sealed_file(paths: Paths) -> Path:
    """The passphrase sealed by ``systemd-creds``."""
    return paths.config / "secrets.cred"


def key_file(paths: Paths) -> Path:
    """The passphrase in a file only the user can read (where ``systemd-creds`` cannot be used)."""
    return paths.config / "secrets.key"


def method(paths: Paths) -> str | None:
    """``systemd-creds``, ``key file``, or None when the store is not unlocked automatically."""
    if sealed_file(paths).is_file():
        return "systemd-creds"
    if key_file(paths).is_file():
        return "key file"
    return None


def remember(paths: Paths, passphrase: str) -> str:
    """Keep the passphrase for automatic unlocking; returns how (blocking). Replaces what was kept before."""
    if paths.config.is_relative_to(paths.home):
        raise ConfigError(f"the settings folder {paths.config} is inside the data folder {paths.home}, whose folders "
                          "agents can reach: choose another NANOCLAW_CONFIG_DIR to unlock automatically")
    _private_folder(paths.config)
    forget(paths)
    if _seal(paths, passphrase):
        return "systemd-creds"
    _write_private(key_file(paths), passphrase.encode())
    return "key file"


def recall(paths: Paths) -> str | None:
    """The kept passphrase, or None when there is none or it cannot be read (logged; blocking)."""
    sealed = sealed_file(paths)
    if sealed.is_file():
        return _unseal(sealed)
    file = key_file(paths)
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as err:
        log.warning("secrets: cannot read the automatic-unlock key %s: %s", file, err)
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_KEY_BYTES:
            log.warning("secrets: %s is not a key file NanoClaw wrote; ignoring it", file)
            return None
        if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & 0o077):
            log.warning("secrets: %s is readable by others or not yours; ignoring it (choose automatic unlocking "
                        "again to write a new one)", file)
            return None
        return handle.read().decode("utf-8", "replace") or None


def forget(paths: Paths) -> None:
    """Stop unlocking automatically: remove what was kept (blocking)."""
    for file in (sealed_file(paths), key_file(paths)):
        with contextlib.suppress(FileNotFoundError):
            file.unlink()


def _private_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as err:
        raise ConfigError(f"cannot create the settings folder {folder}: {err}") from err


def _write_private(file: Path, data: bytes) -> None:
    """Write a new 0600 file in one go (never through a link; a half-written key is never left)."""
    temp = file.with_name(f".{file.name}.new")
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(file)
    except OSError as err:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise ConfigError(f"cannot write the automatic-unlock key {file}: {err}") from err


def _systemd_creds() -> str | None:
    return shutil.which("systemd-creds")


def _seal(paths: Paths, passphrase: str) -> bool:
    """Seal with ``systemd-creds`` and read it back; False when it cannot be used here.

    It cannot as a normal user on systemd before 256, in many containers, and on macOS and Windows.
    """
    exe = _systemd_creds()
    if exe is None:
        return False
    target = sealed_file(paths)
    try:
        done = subprocess.run([exe, f"--name={CREDENTIAL_NAME}", "encrypt", "-", str(target)],  # noqa: S603
                              input=passphrase.encode(), capture_output=True, timeout=SYSTEMD_CREDS_TIMEOUT,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        log.info("secrets: systemd-creds cannot be used here (%s); using a private key file", err)
        return False
    if done.returncode != 0:
        log.info("secrets: systemd-creds cannot seal for this user (%s); using a private key file",
                 done.stderr.decode(errors="replace").strip().splitlines()[-1:] or "no reason given")
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        return False
    target.chmod(0o600)
    if _unseal(target) != passphrase:
        target.unlink()
        return False
    return True


def _unseal(target: Path) -> str | None:
    exe = _systemd_creds()
    if exe is None:
        log.warning("secrets: %s was sealed with systemd-creds, which is not installed now", target)
        return None
    try:
        done = subprocess.run([exe, f"--name={CREDENTIAL_NAME}", "decrypt", str(target), "-"],  # noqa: S603
                              capture_output=True, timeout=SYSTEMD_CREDS_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        log.warning("secrets: systemd-creds could not unseal %s: %s", target, err)
        return None
    if done.returncode != 0:
        log.warning("secrets: systemd-creds could not unseal %s: %s", target,
                    done.stderr.decode(errors="replace").strip())
        return None
    return done.stdout.decode("utf-8", "replace") or None
