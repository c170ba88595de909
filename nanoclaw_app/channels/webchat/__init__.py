"""The in-app chat channel (``webchat``): the owner's own conversation in the app window; always on, no credentials."""

from nanoclaw_app.channels.webchat.adapter import CHANNEL, OWNER_HANDLE, WebchatAdapter

__all__ = ["CHANNEL", "OWNER_HANDLE", "WebchatAdapter"]
