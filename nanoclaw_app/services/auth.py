"""Who may use the app: a session cookie, got from a one-time login link or the LAN password.

The window and ``nanoclaw open`` use login links; with LAN access on, other devices sign in with the owner's password.

Only hashes of cookies and link tokens are stored, so a copy of the database signs nobody in. Link tokens live in the
database so that ``nanoclaw open`` (another process) can mint one for the running host. Sessions are read from the
database on every request, never trusted from memory: one ended elsewhere (another process, an expiry, a deleted row)
stops working at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from datetime import timedelta

from nanoclaw_app.db import app_state
from nanoclaw_app.db import web_sessions as sessions_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.errors import UserError
from nanoclaw_app.timeutil import iso, now_iso, utcnow

log = logging.getLogger(__name__)

COOKIE = "nanoclaw_session"
SESSION_DAYS = 30
LINK_SECONDS = 600
PASSWORD_KEY = "web.lan_password"  # noqa: S105 - the app_state key of the hash, not a password
MIN_PASSWORD = 10
_FAILURES_ALLOWED = 5
_FAILURE_WINDOW = 300.0
_SEEN_EVERY = timedelta(minutes=5)
"""``last_seen_at`` is written at most this often per session, not on every request."""
_PRUNE_AT = 1024


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_login_token(db: Database, *, seconds: float = LINK_SECONDS) -> str:
    """A one-time token for ``/login?token=…``, valid for ``seconds``; used by the window and ``nanoclaw open``."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    await sessions_db.add_login_token(db, _hash(token), iso(now), iso(now + timedelta(seconds=seconds)))
    return token


def hash_password(password: str) -> str:
    """``scrypt$<salt>$<hash>``: slow on purpose, so a stolen hash is expensive to guess."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of ``password`` against :func:`hash_password` output."""
    try:
        kind, salt, digest = stored.split("$")
    except ValueError:
        return False
    if kind != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1)
    return hmac.compare_digest(got.hex(), digest)


def client_key(address: str | None) -> str:
    """Whom a password guess counts against: the connecting IP address.

    IPv6 counts by its /64, which one device can fill with addresses at will.
    """
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class GuessLimit:
    """A wrong-password budget per client over a sliding window.

    The attempt is reserved before the slow password check (and given back only when the password was right), so
    parallel guesses cannot all slip past the limit while the first ones are still being checked. Each client has its
    own budget: a neighbour guessing never locks the owner's phone out, and the window never uses the password at all.
    """

    def __init__(self, allowed: int = _FAILURES_ALLOWED, window: float = _FAILURE_WINDOW) -> None:
        self._allowed = allowed
        self._window = window
        self._attempts: dict[str, list[float]] = {}
        self._told: set[str] = set()  # clients already logged as blocked in this window (one line, not thousands)

    def reserve(self, client: str) -> float | None:
        """Take one attempt for ``client``; None when its budget is spent."""
        now = time.monotonic()
        if len(self._attempts) >= _PRUNE_AT:
            self._attempts = {key: times for key, times in self._attempts.items()
                              if times and now - times[-1] < self._window}
            self._told &= self._attempts.keys()
        recent = [t for t in self._attempts.get(client, ()) if now - t < self._window]
        self._attempts[client] = recent
        if len(recent) >= self._allowed:
            if client not in self._told:
                self._told.add(client)
                log.warning("LAN sign-in from %s refused for five minutes: too many wrong passwords", client)
            return None
        self._told.discard(client)
        recent.append(now)
        return now

    def release(self, client: str, stamp: float) -> None:
        """The password was right: the reserved attempt does not count."""
        recent = self._attempts.get(client, [])
        if stamp in recent:
            recent.remove(stamp)
        if not recent:
            self._attempts.pop(client, None)


class WebAuth:
    """Issues and checks session cookies."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._guesses = GuessLimit()
        self._revoked = asyncio.Event()
        self.password_set = False
        """Whether a LAN password exists (kept in memory for the sign-in page; see :meth:`load`)."""

    async def load(self) -> None:
        """Read what the sign-in page needs to know, once the database is open."""
        self.password_set = await self.has_password()

    def revocation(self) -> asyncio.Event:
        """Set when sessions were ended in this process; open event streams then re-check theirs."""
        return self._revoked

    def _revoke(self) -> None:
        self._revoked.set()
        self._revoked = asyncio.Event()

    async def _new_session(self, origin: str) -> str:
        value = secrets.token_urlsafe(32)
        now = utcnow()
        await sessions_db.start(self._db, _hash(value), origin, iso(now), iso(now + timedelta(days=SESSION_DAYS)))
        return value

    async def redeem_link(self, token: str) -> str | None:
        """Exchange a one-time link token for a session cookie value; None when unknown, used or expired."""
        if not await sessions_db.take_login_token(self._db, _hash(token), now_iso()):
            log.warning("a login link was refused (unknown, used or expired)")
            return None
        return await self._new_session("link")

    async def window_session(self) -> str:
        """A session for the app's own window (no link round trip needed in-process)."""
        return await self._new_session("window")

    async def password_login(self, password: str, client: str | None) -> str | None:
        """A session for the LAN password, or None.

        ``client`` (the connecting IP address) is refused for a while after repeated wrong passwords.
        """
        key = client_key(client)
        stamp = self._guesses.reserve(key)
        if stamp is None:
            raise UserError("too many wrong passwords from this device; wait five minutes and try again")
        stored = await app_state.get(self._db, PASSWORD_KEY)
        ok = stored is not None and await asyncio.to_thread(verify_password, password, stored)
        if not ok:
            log.warning("a wrong LAN password was entered from %s", key)
            return None
        self._guesses.release(key, stamp)
        return await self._new_session("password")

    async def has_password(self) -> bool:
        """Whether the owner has set a LAN password."""
        return await app_state.get(self._db, PASSWORD_KEY) is not None

    async def set_password(self, password: str) -> None:
        """Set or replace the LAN password (signs out every password session)."""
        if len(password) < MIN_PASSWORD:
            raise UserError(f"the password needs at least {MIN_PASSWORD} characters")
        await app_state.put(self._db, PASSWORD_KEY, await asyncio.to_thread(hash_password, password))
        self.password_set = True
        await self.sign_out_password_sessions()

    async def check(self, value: str | None) -> bool:
        """Whether a cookie value is a live session: read from the database every time (one primary-key lookup)."""
        if not value:
            return False
        key = _hash(value)
        now = utcnow()
        seen = await sessions_db.last_seen(self._db, key, iso(now))
        if seen is None:
            return False
        if seen < iso(now - _SEEN_EVERY):
            await sessions_db.touch(self._db, key, iso(now))
        return True

    async def other_sessions(self, value: str | None) -> int:
        """How many live sessions there are besides this one (other browsers and devices)."""
        return await sessions_db.count_others(self._db, _hash(value or ""), now_iso())

    async def sign_out(self, value: str | None) -> None:
        """End one session."""
        if value:
            await sessions_db.end(self._db, _hash(value))
            self._revoke()

    async def sign_out_others(self, value: str) -> int:
        """End every session but this one (a lost phone, a borrowed computer); returns how many ended."""
        ended = await sessions_db.end_others(self._db, _hash(value))
        self._revoke()
        log.info("signed out %d other browsers and devices", ended)
        return ended

    async def sign_out_password_sessions(self) -> None:
        """End every session signed in with the LAN password (LAN access was turned off, the password changed)."""
        await sessions_db.end_by_origin(self._db, "password")
        self._revoke()
