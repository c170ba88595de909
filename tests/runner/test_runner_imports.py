"""The runner stands alone: it never imports the host, and providers are found by name only when chosen."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import agent_runner
from agent_runner.config import RunnerConfig
from agent_runner.providers.registry import PROVIDERS, UnknownProvider, build_provider
from tests.fakes.provider import ScriptedProvider

SOURCE = Path(agent_runner.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_agent_runner_never_imports_the_host() -> None:
    files = sorted(SOURCE.rglob("*.py"))
    assert len(files) > 10
    offenders = {
        str(path.relative_to(SOURCE)): sorted(m for m in _imported_modules(path) if m.split(".")[0] == "nanoclaw_app")
        for path in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_registry_names_the_three_providers() -> None:
    assert PROVIDERS == {
        "claude": "agent_runner.providers.claude:ClaudeProvider",
        "anthropic": "agent_runner.providers.anthropic:AnthropicProvider",
        "openai": "agent_runner.providers.openai:OpenAIProvider",
    }


def test_an_unknown_provider_name_is_refused_with_the_choices() -> None:
    with pytest.raises(UnknownProvider, match="anthropic, claude, openai"):
        build_provider("gemini", RunnerConfig())


def test_a_module_and_class_name_builds_that_provider_with_the_config() -> None:
    config = RunnerConfig(provider="tests.fakes.provider:ScriptedProvider")
    provider = build_provider(config.provider, config)
    assert isinstance(provider, ScriptedProvider)
    assert provider.config is config
    with pytest.raises(UnknownProvider, match="no provider class"):
        build_provider("tests.fakes.provider:Nope", config)
    with pytest.raises(UnknownProvider, match="cannot import"):
        build_provider("tests.fakes.nowhere:Nope", config)
