"""The service layer: every action the app offers, as plain async functions over :class:`AppServices`.

The web controllers and the CLI subcommands both call these, so the window, a browser and a terminal behave the same.
"""

from nanoclaw_app.services.context import AppServices

__all__ = ["AppServices"]
