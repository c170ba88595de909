"""Who may use the app: a session cookie, got from a one-time login link or the LAN password.

The window and ``nanoclaw open`` use login links; with LAN access on, other devices sign in with the owner's password.

Only hashes of cookies and link tokens are stored, so a copy of the database signs nobody in. Link tokens live in the
database so that ``nanoclaw open`` (another process) can mint one for the running host.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from datetime import timedelta

from nanoclaw_app.db import app_state
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


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_login_token(db: Database, *, seconds: float = LINK_SECONDS) -> str:
    """A one-time token for ``/login?token=…``, valid for ``seconds``; used by the window and ``nanoclaw open``."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    await db.execute(
        "INSERT INTO login_tokens (token_hash, created_at, expires_at) VALUES (?, ?, ?)",
        (_hash(token), iso(now), iso(now + timedelta(seconds=seconds))),
    )
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


class WebAuth:
    """Issues and checks session cookies; a small in-memory cache keeps the check off the database per request."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._known: dict[str, float] = {}  # cookie hash -> monotonic time it was last confirmed
        self._failures: list[float] = []
        self.password_set = False
        """Whether a LAN password exists (kept in memory for the sign-in page; see :meth:`load`)."""

    async def load(self) -> None:
        """Read what the sign-in page needs to know, once the database is open."""
        self.password_set = await self.has_password()

    async def _new_session(self, origin: str) -> str:
        value = secrets.token_urlsafe(32)
        now = utcnow()
        await self._db.execute(
            "INSERT INTO web_sessions (token_hash, origin, created_at, last_seen_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (_hash(value), origin, iso(now), iso(now), iso(now + timedelta(days=SESSION_DAYS))),
        )
        self._known[_hash(value)] = time.monotonic()
        return value

    async def redeem_link(self, token: str) -> str | None:
        """Exchange a one-time link token for a session cookie value; None when unknown, used or expired."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM login_tokens WHERE token_hash = ? AND expires_at > ?", (_hash(token), now_iso())
            )
            redeemed = cursor.rowcount == 1
            await conn.execute("DELETE FROM login_tokens WHERE expires_at <= ?", (now_iso(),))
        if not redeemed:
            log.warning("a login link was refused (unknown, used or expired)")
            return None
        return await self._new_session("link")

    async def window_session(self) -> str:
        """A session for the app's own window (no link round trip needed in-process)."""
        return await self._new_session("window")

    async def password_login(self, password: str) -> str | None:
        """A session for the LAN password, or None; refuses for a while after repeated failures."""
        now = time.monotonic()
        self._failures = [t for t in self._failures if now - t < _FAILURE_WINDOW]
        if len(self._failures) >= _FAILURES_ALLOWED:
            raise UserError("too many wrong passwords; wait five minutes and try again")
        stored = await app_state.get(self._db, PASSWORD_KEY)
        ok = stored is not None and await asyncio.to_thread(verify_password, password, stored)
        if not ok:
            self._failures.append(now)
            log.warning("a wrong LAN password was entered")
            return None
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
        await self._db.execute("DELETE FROM web_sessions WHERE origin = 'password'")
        self._known.clear()

    async def check(self, value: str | None) -> bool:
        """Whether a cookie value is a live session."""
        if not value:
            return False
        key = _hash(value)
        if key in self._known:
            return True
        row = await self._db.fetchone(
            "SELECT 1 FROM web_sessions WHERE token_hash = ? AND expires_at > ?", (key, now_iso())
        )
        if row is None:
            return False
        self._known[key] = time.monotonic()
        await self._db.execute("UPDATE web_sessions SET last_seen_at = ? WHERE token_hash = ?", (now_iso(), key))
        return True

    async def sign_out(self, value: str | None) -> None:
        """End one session."""
        if value:
            self._known.pop(_hash(value), None)
            await self._db.execute("DELETE FROM web_sessions WHERE token_hash = ?", (_hash(value),))

    async def sign_out_password_sessions(self) -> None:
        """End every session signed in with the LAN password (LAN access was turned off)."""
        self._known.clear()
        await self._db.execute("DELETE FROM web_sessions WHERE origin = 'password'")

    async def sign_out_everyone(self) -> None:
        """End every session (after turning LAN access off, or on request)."""
        self._known.clear()
        await self._db.execute("DELETE FROM web_sessions")
