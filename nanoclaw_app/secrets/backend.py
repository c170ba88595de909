"""Choosing the keyring backend explicitly: auto-selection can land on a plaintext file or on one that fails later.

The OS keyring is used only when a set/get/delete probe works. Anything that stores secrets in plain text is refused.
(An encrypted-file backend for machines without an OS keyring arrives with the app's secret settings.)
"""

from __future__ import annotations

import logging

import keyring
from keyring.backend import KeyringBackend

from nanoclaw_app.ids import short_code

log = logging.getLogger(__name__)

PROBE_SERVICE = "nanoclaw-probe"
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


def choose_os_keyring() -> tuple[KeyringBackend | None, str]:
    """The working OS keyring, or None and the reason (blocking: call it in a thread)."""
    backend = keyring.get_keyring()
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    if any(part in name for part in _REFUSED):
        return None, f"no OS keyring is available here ({name})"
    problem = probe(backend)
    if problem is not None:
        return None, f"the OS keyring does not work: {problem}"
    log.info("secrets are kept in %s", name)
    return backend, ""
