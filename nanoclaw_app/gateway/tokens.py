"""Per-container gateway tokens: the only credential a container holds, worthless outside this host process.

A fresh token is granted for every container start and revoked when the container goes away. Tokens are kept only as
SHA-256 digests, so the lookup compares digests (no timing signal about the token itself) and a memory dump or a
debug print of the registry shows no usable token.

A container's token is bound to the listener (socket or port) the gateway opened for that container alone, and to its
provider's API: copied into another container, or used for the other API, it is worthless.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

PREFIX = "ncgw-"
"""Makes a leaked token recognisable in a log or a paste."""
SHARED = ""
"""The listener id of the gateway's own socket or port, which no container is given (the setup wizard's check)."""


@dataclass(frozen=True, slots=True)
class Grant:
    """Who a token belongs to: one container of one session."""

    session_id: str
    agent_group_id: str
    listener: str = SHARED
    """The only listener this token is accepted on."""
    upstream: str | None = None
    """The only API it may call (``anthropic``/``openai``); None for the host's own calls, which may call either."""


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


class TokenRegistry:
    """Tokens in memory only: a host restart invalidates them all, and every container is restarted with new ones."""

    def __init__(self) -> None:
        self._grants: dict[bytes, Grant] = {}
        self._by_session: dict[str, set[bytes]] = {}

    def grant(self, session_id: str, agent_group_id: str, *, listener: str = SHARED,
              upstream: str | None = None) -> str:
        """A new random token for one container start of ``session_id``, valid only on ``listener``."""
        token = PREFIX + secrets.token_urlsafe(32)
        digest = _digest(token.encode())
        self._grants[digest] = Grant(session_id, agent_group_id, listener, upstream)
        self._by_session.setdefault(session_id, set()).add(digest)
        return token

    def revoke(self, session_id: str) -> int:
        """Invalidate every token of a session at once; returns how many there were."""
        digests = self._by_session.pop(session_id, set())
        for digest in digests:
            self._grants.pop(digest, None)
        return len(digests)

    def lookup(self, candidates: Iterable[bytes]) -> Grant | None:
        """The grant of the first valid token among ``candidates`` (a request may carry it in either header)."""
        for token in candidates:
            grant = self._grants.get(_digest(token))
            if grant is not None:
                return grant
        return None

    def __len__(self) -> int:
        return len(self._grants)


def tokens_in(headers: Iterable[tuple[bytes, bytes]]) -> list[bytes]:
    """Token candidates from ``x-api-key`` and ``Authorization: Bearer`` (how the SDKs and the Claude CLI send keys)."""
    found: list[bytes] = []
    for key, value in headers:
        if key == b"x-api-key":
            found.append(value.strip())
        elif key == b"authorization" and value[:7].lower() == b"bearer ":
            found.append(value[7:].strip())
    return found
