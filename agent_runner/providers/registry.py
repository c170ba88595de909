"""Which class implements each provider name; modules are imported only when chosen.

Importing lazily keeps the runner's start fast and lets an image that lacks one SDK still run the others. A name of the
form ``module:Class`` is imported as given (tests use a scripted provider this way, and a third party could plug one
in without editing this table).
"""

from __future__ import annotations

import importlib
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


__all__ = ["PROVIDERS", "UnknownProvider", "build_provider"]
