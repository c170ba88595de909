"""NanoClaw host: the app that routes chat messages to sandboxed agents."""

__version__ = "0.1.0"
