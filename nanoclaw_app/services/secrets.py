"""Secrets (model keys, channel tokens): store, delete and list them by name; open the encrypted store.

Nothing here ever returns a value: the window, a browser and the CLI only learn names, labels and whether a value
is set. The passphrase of the encrypted file is used to derive its key and then forgotten.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets as random
from dataclasses import dataclass

from nanoclaw_app.db import secret_names
from nanoclaw_app.errors import NotFound, UserError
from nanoclaw_app.gateway.upstream import build_upstreams
from nanoclaw_app.secrets import machine_key
from nanoclaw_app.secrets.backend import encrypted_store_exists
from nanoclaw_app.secrets.encrypted_file import MIN_PASSPHRASE, EncryptedFileKeyring, secrets_file
from nanoclaw_app.services.context import AppServices

log = logging.getLogger(__name__)

NAME = re.compile(r"[a-z0-9_.-]{1,64}")
MAX_VALUE_CHARS = 64 * 1024


@dataclass
class SecretInfo:
    """One secret as the UI may see it: never its value."""

    name: str
    label: str
    is_set: bool | None
    """None while the secret store is locked (the value cannot be checked)."""
    updated_at: str | None


@dataclass
class SecretStatus:
    """Where secrets are kept, and what the user must do when they cannot be used yet."""

    kind: str
    """``os_keyring``, ``encrypted_file`` or ``none``."""
    backend: str
    locked: bool
    """An encrypted file exists but has not been unlocked in this run."""
    needs_passphrase_setup: bool
    """No OS keyring works and no encrypted file exists: the user must choose a passphrase."""
    reason: str
    automatic: str | None = None
    """How this computer unlocks the encrypted file at start (``systemd-creds``, ``key file``), or None."""


def check_name(name: str) -> str:
    """The name, or a :class:`UserError` saying which names are allowed."""
    if not NAME.fullmatch(name):
        raise UserError(f"secret name {name!r} is not allowed: use 1-64 of a-z, 0-9, '_', '.', '-' "
                        "(e.g. anthropic_api_key)")
    return name


def _known_names(services: AppServices) -> list[str]:
    """Secrets the app reads even before anyone stored them (the model keys), so the UI can offer to set them."""
    return [upstream.secret_name for upstream in build_upstreams(services.settings).values()]


async def put_secret(services: AppServices, name: str, value: str, label: str = "") -> None:
    """Store or replace a secret and record its name (the value goes to the secret store only)."""
    check_name(name)
    value = value.strip()
    if not value:
        raise UserError(f"the value of {name!r} is empty; paste the key or token")
    if len(value) > MAX_VALUE_CHARS:
        raise UserError(f"the value of {name!r} is longer than {MAX_VALUE_CHARS} characters; is it the right text?")
    await services.secrets.set(name, value)
    await secret_names.record(services.ctx.db, name, label.strip()[:200])
    services.ctx.events.publish("secrets.changed", name=name, is_set=True)


async def delete_secret(services: AppServices, name: str) -> None:
    """Delete a secret's value and forget its name."""
    check_name(name)
    recorded = await secret_names.get(services.ctx.db, name)
    if recorded is None and name not in _known_names(services):
        raise NotFound(f"there is no secret named {name!r}")
    await services.secrets.delete(name)
    await secret_names.forget(services.ctx.db, name)
    services.ctx.events.publish("secrets.changed", name=name, is_set=False)


async def list_secrets(services: AppServices) -> list[SecretInfo]:
    """Every recorded secret plus the model keys, with whether each is set (never the value)."""
    recorded = {row.name: row for row in await secret_names.list_all(services.ctx.db)}
    names = sorted(set(recorded) | set(_known_names(services)))
    result = []
    for name in names:
        row = recorded.get(name)
        is_set = (await services.secrets.get(name) is not None) if services.secrets.available else None
        result.append(SecretInfo(name=name, label=row.label if row else "", is_set=is_set,
                                 updated_at=row.updated_at if row else None))
    return result


async def secret_status(services: AppServices) -> SecretStatus:
    """Which backend holds the secrets, or why none does."""
    store = services.secrets
    exists = await asyncio.to_thread(encrypted_store_exists, services.settings.paths)
    return SecretStatus(
        kind=store.backend_kind,
        backend=store.backend_name,
        locked=not store.available and exists,
        needs_passphrase_setup=not store.available and not exists,
        reason=store.unavailable_reason,
        automatic=await asyncio.to_thread(machine_key.method, services.settings.paths) if exists else None,
    )


def _refuse_if_os_keyring(services: AppServices) -> None:
    if services.secrets.backend_kind == "os_keyring":
        raise UserError(f"secrets are kept in the OS keyring ({services.secrets.backend_name}); "
                        "no passphrase is needed")


async def unlock(services: AppServices, passphrase: str, *, automatic: bool = False) -> None:
    """Open the existing encrypted file with the user's passphrase and use it from now on.

    ``automatic`` also keeps the passphrase on this computer, so the next start unlocks by itself.
    """
    _refuse_if_os_keyring(services)
    paths = services.settings.paths
    file = secrets_file(paths)
    backend = await asyncio.to_thread(EncryptedFileKeyring.unlock, file, passphrase)
    if automatic:
        how = await asyncio.to_thread(machine_key.remember, paths, passphrase)
        log.info("secret store %s unlocks automatically from now on (%s)", file, how)
    _use(services, backend)
    log.info("secret store %s unlocked", file)


async def create_passphrase(services: AppServices, passphrase: str, *, automatic: bool = False) -> None:
    """Start an encrypted secret file sealed with a new passphrase (only where no OS keyring works)."""
    _refuse_if_os_keyring(services)
    if len(passphrase) < MIN_PASSPHRASE:
        raise UserError(f"the passphrase needs at least {MIN_PASSPHRASE} characters")
    paths = services.settings.paths
    file = secrets_file(paths)
    if automatic:  # kept first: a store whose passphrase could not be kept is never made
        await asyncio.to_thread(machine_key.remember, paths, passphrase)
    try:
        backend = await asyncio.to_thread(EncryptedFileKeyring.create, file, passphrase)
    except BaseException:
        if automatic:
            await asyncio.to_thread(machine_key.forget, paths)
        raise
    _use(services, backend)
    log.info("secret store %s created%s", file, " (unlocks automatically on this computer)" if automatic else "")


async def create_automatic(services: AppServices) -> None:
    """Start an encrypted secret file that this computer unlocks by itself: no passphrase for the user to choose.

    Its passphrase is random and kept only by this computer (:mod:`machine_key`); choosing a passphrase later
    (:func:`change_passphrase`) turns that off.
    """
    await create_passphrase(services, random.token_urlsafe(32), automatic=True)


async def change_passphrase(services: AppServices, passphrase: str, *, automatic: bool) -> None:
    """Seal the unlocked store under a new passphrase, kept by this computer or not (``automatic``)."""
    _refuse_if_os_keyring(services)
    backend = services.secrets.encrypted_file
    if backend is None:
        raise UserError("unlock the secret store first")
    paths = services.settings.paths
    await asyncio.to_thread(backend.rekey, passphrase)
    if automatic:
        await asyncio.to_thread(machine_key.remember, paths, passphrase)
    else:
        await asyncio.to_thread(machine_key.forget, paths)
    log.info("secret store passphrase changed (%s)", "unlocks automatically" if automatic else "asked at each start")


def _use(services: AppServices, backend: EncryptedFileKeyring) -> None:
    services.secrets.set_backend(backend)
    services.state.components["secrets"] = "ok"
    services.ctx.events.publish("health", components={"secrets": "ok"})
