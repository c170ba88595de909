"""One exception tree, classified by what the caller should do.

::

    NanoClawError
    ├── TransientError      retry later (may carry ``retry_after`` seconds)
    │   └── ChannelDown     the chat platform link is down: wait for it without using up attempts
    ├── AuthError           re-pair or re-authenticate the account
    ├── ConfigError         stop and tell the user how to fix the setup
    ├── UserError           bad input: show the message, change nothing
    │   ├── NotFound
    │   └── PermissionDenied
    └── IntegrityError      our own invariants broke: log loudly, never retry blindly

Adapters and runtimes wrap library errors into these with ``raise ... from err`` so that retry decisions live in one
place (delivery, wake) instead of in every adapter.
"""

from __future__ import annotations


class NanoClawError(Exception):
    """Base of every error this app raises on purpose."""


class TransientError(NanoClawError):
    """Something outside us failed for now; the same call may succeed later."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ChannelDown(TransientError):
    """The channel's link is down (reconnecting, logged out); sends wait until the adapter reports it up again."""

    def __init__(self, channel_type: str, message: str) -> None:
        super().__init__(message)
        self.channel_type = channel_type


class AuthError(NanoClawError):
    """Credentials were refused: the user must re-pair or re-enter a key."""


class ConfigError(NanoClawError):
    """The setup is wrong; the message says how to fix it."""


class UserError(NanoClawError):
    """The request is invalid; nothing was changed."""


class NotFound(UserError):
    """The named thing does not exist."""


class PermissionDenied(UserError):
    """The caller may not do this."""


class IntegrityError(NanoClawError):
    """An invariant of ours broke (e.g. a file escaped its session folder)."""


class UnsafePath(IntegrityError):
    """An attachment name or folder tried to leave its session (traversal, symlink, absolute path)."""


class AttachmentTooLarge(UserError):
    """An attachment exceeded the configured size cap."""
