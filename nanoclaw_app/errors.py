"""One exception tree, classified by what the caller should do.

::

    NanoClawError
    ├── TransientError      retry later (may carry ``retry_after`` seconds)
    │   ├── WaitingForUser  until the user acts (a locked secret store, a missing key)
    │   └── ChannelDown     the chat platform link is down: wait for it without using up attempts
    ├── AuthError           re-pair or re-authenticate the account
    ├── ConfigError         stop and tell the user how to fix the setup
    ├── UserError           bad input: show the message, change nothing
    │   ├── NotFound
    │   └── PermissionDenied
    └── IntegrityError      our own invariants broke: log loudly, never retry blindly
        ├── UnsafePath      a path in a container-writable folder is a link, pipe, folder or too big
        └── SessionDamaged  a session DB is not the host's file: set it aside and start afresh

Adapters and runtimes wrap library errors into these with ``raise ... from err`` so that retry decisions live in one
place (delivery, wake) instead of in every adapter.
"""

from __future__ import annotations

from pathlib import Path


class NanoClawError(Exception):
    """Base of every error this app raises on purpose."""


class TransientError(NanoClawError):
    """Something outside us failed for now; the same call may succeed later."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WaitingForUser(TransientError):
    """Work that waits until the user acts (unlocks the secret store, adds a key): retried then, never an error."""


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


class SessionDamaged(IntegrityError):
    """A session's database file is not the one the host made (a link, pipe or folder in its place, or unreadable).

    The caller sets the folder (for ``inbound.db``) or the file (for ``outbound.db``) aside, starts it afresh and tells
    the owner; the container must not run meanwhile.
    """

    def __init__(self, folder: Path, file: str, reason: str) -> None:
        super().__init__(f"session {folder.name}: {file} {reason}")
        self.folder = folder
        self.file = file
        self.reason = reason


class AttachmentTooLarge(UserError):
    """An attachment exceeded the configured size cap."""
