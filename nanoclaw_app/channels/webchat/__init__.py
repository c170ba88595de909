"""The in-app chat channel (``webchat``): the owner's own conversation in the app window; always on, no credentials.

It is part of the app rather than a channel the user sets up: the host builds it itself (``webchat.adapter``).
"""
