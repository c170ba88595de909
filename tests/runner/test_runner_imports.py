"""The runner stands alone: it never imports the host, and providers are found by name only when chosen."""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

import agent_runner
from agent_runner.config import RunnerConfig
from agent_runner.providers.registry import PROVIDERS, UnknownProvider, build_provider
from tests.fakes.openai_server import FakeOpenAI
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


HEAVY = ("anthropic", "openai", "claude_agent_sdk", "mcp", "pydantic", "httpx", "watchfiles")
"""Packages that each take 50 ms to over a second to import: none of them may delay a fresh runner's first answer."""


def _loaded_after(code: str) -> set[str]:
    """The heavy top-level packages in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return set(done.stdout.split())


def test_starting_the_runner_imports_no_provider_sdk_until_one_is_chosen() -> None:
    assert _loaded_after("import agent_runner.__main__, agent_runner.loop") == set()


def test_the_anthropic_provider_makes_its_first_request_without_any_sdk(tmp_path: Path) -> None:
    code = f"""
import asyncio
from pathlib import Path
from agent_runner.config import RunnerConfig
from agent_runner.providers.registry import build_provider

async def first_request() -> None:
    config = RunnerConfig(provider="anthropic", base_url="http://127.0.0.1:9", api_key="t", model_max_retries=0)
    provider = build_provider("anthropic", config)
    query = provider.query(prompt="hi", continuation=None, cwd=Path({str(tmp_path)!r}), system_prompt="", tools=[])
    query.end()
    kinds = [event.kind async for event in query.events()]
    assert kinds == ["init", "error"], kinds  # nothing listens on port 9: the request was made, and refused
    await provider.aclose()

asyncio.run(first_request())
"""
    assert _loaded_after(code) == set()


async def test_the_openai_provider_answers_its_first_message_without_any_sdk(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    async with fake:
        code = f"""
import asyncio
from pathlib import Path
from agent_runner.config import RunnerConfig
from agent_runner.providers.registry import build_provider

async def first_answer() -> None:
    config = RunnerConfig(provider="openai", base_url={fake.v1_url!r}, api_key="t", model_max_retries=0)
    provider = build_provider("openai", config)
    query = provider.query(prompt="hi", continuation=None, cwd=Path({str(tmp_path)!r}), system_prompt="", tools=[])
    query.end()
    answers = [event.text async for event in query.events() if event.kind == "result"]
    assert answers == ["FAKE: hi"], answers
    await provider.aclose()

asyncio.run(first_answer())
"""
        loaded = await asyncio.to_thread(_loaded_after, code)
    assert loaded == set()
    assert len(fake.requests) == 1
