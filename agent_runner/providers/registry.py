"""Which class implements each provider name; modules are imported only when chosen.

Importing lazily keeps the runner's start fast and lets an image that lacks one SDK still run the others. A name of the
form ``module:Class`` is imported as given (tests use a scripted provider this way, and a third party could plug one
in without editing this table).
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from typing import cast

from agent_runner.config import RunnerConfig
from agent_runner.providers.base import Provider

PROVIDERS: dict[str, str] = {
    "claude": "agent_runner.providers.claude:ClaudeProvider",
    "anthropic": "agent_runner.providers.anthropic:AnthropicProvider",
    "openai": "agent_runner.providers.openai:OpenAIProvider",
}


class UnknownProvider(ValueError):
    """The configured provider name is neither registered nor importable."""


def _import(target: str) -> type:
    module_name, _, class_name = target.partition(":")
    if not module_name or not class_name:
        raise UnknownProvider(f"provider {target!r} is not of the form module:Class")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise UnknownProvider(f"cannot import provider module {module_name!r}: {err}") from err
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise UnknownProvider(f"{module_name!r} has no provider class {class_name!r}")
    return cls


def build_provider(name: str, config: RunnerConfig) -> Provider:
    """Construct the provider called ``name`` as ``Cls(config)``."""
    target = PROVIDERS.get(name) or (name if ":" in name else None)
    if target is None:
        raise UnknownProvider(f"unknown provider {name!r}; choose one of {', '.join(sorted(PROVIDERS))}")
    return cast(Provider, _import(target)(config))


class ProviderLoader:
    """Builds the chosen provider in a background thread, started as soon as its name is known.

    Importing a provider's module takes from ~100 ms to a second (``claude_agent_sdk``) on a fresh container; in a
    thread it overlaps the runner's own start-up (asyncio, the session DBs, the file watch, the first read of the
    inbox) instead of preceding it.
    """

    def __init__(self, name: str, config: RunnerConfig) -> None:
        self._name = name
        self._config = config
        self._provider: Provider | None = None
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._build, name="provider-loader", daemon=True)

    def start(self) -> ProviderLoader:
        """Begin building; ``result`` joins the thread."""
        self._thread.start()
        return self

    def _build(self) -> None:
        try:
            self._provider = build_provider(self._name, self._config)
        except Exception as err:  # re-raised by result(), in the caller's thread
            self._error = err

    async def result(self) -> Provider:
        """The built provider, once the thread is done; raises what building raised (e.g. ``UnknownProvider``)."""
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)
        if self._error is not None:
            raise self._error
        if self._provider is None:
            raise RuntimeError("ProviderLoader.result() called before start()")
        return self._provider

    async def aclose(self) -> None:
        """Wait for the build and close the provider, if one was built (a failed build is raised by ``result``)."""
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)
        if self._provider is not None:
            await self._provider.aclose()


__all__ = ["PROVIDERS", "ProviderLoader", "UnknownProvider", "build_provider"]
