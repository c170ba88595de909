"""No agent starts while its model key cannot be read: its messages wait, and the owner is told once, in words.

Without this, a locked secret store (a restart with a passphrase-protected store) or a missing key made every message
"answered" with the gateway's refusal as error text. Now the container is not started; the message stays pending
(nothing lost); the owner hears once on their channel what to do, and the app shows the unlock form. When the store
is unlocked or the key saved, :meth:`KeyGate.release` lets the sweep hand the waiting messages over.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from nanoclaw_app.core.events import EventBus
from nanoclaw_app.errors import ConfigError, WaitingForUser
from nanoclaw_app.gateway.upstream import Upstream
from nanoclaw_app.paths import Paths
from nanoclaw_app.secrets.backend import encrypted_store_exists
from nanoclaw_app.secrets.store import SecretStore

log = logging.getLogger(__name__)

_API_NAMES = {"anthropic": "Anthropic", "openai": "OpenAI"}
_UPSTREAM_OF_PROVIDER = {"claude": "anthropic", "anthropic": "anthropic", "openai": "openai"}

Notify = Callable[[str], Awaitable[bool]]


class KeyGate:
    """Checks an agent's key before its container starts; says once per cause what the owner must do."""

    def __init__(self, secrets: SecretStore, paths: Paths, upstreams: Callable[[], dict[str, Upstream]],
                 notify: Notify, events: EventBus) -> None:
        self._secrets = secrets
        self._paths = paths
        self._upstreams = upstreams
        self._notify = notify
        self._events = events
        self._told: str | None = None

    @property
    def waiting(self) -> bool:
        """Whether a start was held since the last release."""
        return self._told is not None

    async def check(self, provider: str) -> None:
        """Raise :class:`WaitingForUser` when ``provider``'s key cannot be used now (telling the owner once)."""
        upstream = self._upstreams().get(_UPSTREAM_OF_PROVIDER.get(provider, ""))
        if upstream is None or not upstream.key_required:
            return  # a custom provider, or a server that needs no key
        api = _API_NAMES.get(upstream.name, upstream.name)
        cause, text = "", ""
        if not self._secrets.available:
            if encrypted_store_exists(self._paths):  # a stat: made, but not unlocked in this run
                cause, text = "locked", (
                    "I can't answer yet: my saved keys are locked since NanoClaw restarted. Open the NanoClaw app and "
                    "type your passphrase; I'll answer the messages waiting as soon as it is unlocked.")
            else:
                cause, text = "no_store", (
                    f"I can't answer yet: NanoClaw has no safe place for your {api} API key on this computer. Open "
                    "the NanoClaw app to finish setting it up; I'll answer the messages waiting then.")
        else:
            try:
                key = await self._secrets.get(upstream.secret_name)
            except ConfigError as err:  # the backend failed to read: as good as no key, and logged
                log.warning("cannot read the %s key: %s", api, err)
                key = None
            if key:
                return
            cause, text = "no_key", (
                f"I can't answer yet: no {api} API key is saved in NanoClaw. Open the NanoClaw app → Settings to add "
                "it; I'll answer the messages waiting as soon as it is saved.")
        if self._told != cause:
            self._told = cause
            log.warning("agent starts wait for the user: %s", cause)
            self._events.publish("secrets.waiting", cause=cause)
            if not await self._notify(text):
                log.warning("could not tell the owner that messages wait for the %s key", api)
        raise WaitingForUser(f"the {api} key cannot be used yet ({cause})")

    def release(self) -> bool:
        """The store was unlocked or a key saved: forget what was said; True when starts had been held."""
        held, self._told = self._told is not None, None
        if held:
            log.info("secrets usable again: the waiting messages go to their agents")
            self._events.publish("secrets.released")
        return held
