"""The shipped skills are true to the tools as built, and short enough to ride in every prompt.

Convention for naming tools in a ``SKILL.md`` (followed by every shipped skill, checked here):

* One of our tools (``agent_runner/tools/ours.py``, the same under every provider) is named in backticks, either bare
  (`` `send_file` ``) or as a call with keyword arguments (`` `send_file(path="out/a.pdf", text="…")` ``). A call
  names only arguments the tool's schema has, and every argument the schema requires.
* Built-in tools (shell, files, web fetch) are described in words ("your file tools", "your web fetch tool"): each
  provider names them differently (``read_file`` here, ``Read`` in Claude Code), so a backticked built-in name is an
  error.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent_runner.config import RunnerConfig
from agent_runner.session_db import SessionDB
from agent_runner.skills import load_skills
from agent_runner.tools.builtin import builtin_tools
from agent_runner.tools.context import ToolContext
from agent_runner.tools.ours import our_tools
from nanoclaw_app.paths import resource
from nanoclaw_app.services.agents.skills import summary

SHIPPED = ("credentials", "files", "formatting", "memory", "scheduling", "self-customize", "web", "welcome")
MAX_LINES = 25
CLAUDE_BUILTINS = ("Bash", "Read", "Write", "Edit", "Glob", "Grep", "WebFetch", "WebSearch")
_SPAN = re.compile(r"`([^`\n]+)`")
_CALL = re.compile(r"^([a-z_][a-z0-9_]*)\((.*)\)$", re.DOTALL)
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def _schemas(tmp_path: Path) -> dict[str, dict[str, object]]:
    ctx = ToolContext(config=RunnerConfig(session_dir=tmp_path), db=SessionDB(tmp_path))
    return {spec.name: spec.input_schema for spec in our_tools(ctx)}


def _top_level_args(text: str) -> list[str]:
    """The comma-separated arguments of a call, ignoring commas inside brackets and quotes."""
    parts: list[str] = []
    depth, quote, start = 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def problems(text: str, schemas: dict[str, dict[str, object]], builtins: set[str]) -> list[str]:
    """Every way ``text`` breaks the convention above, in words."""
    found: list[str] = []
    for span in _SPAN.findall(text):
        call = _CALL.match(span.strip())
        if call is None:
            word = span.strip()
            if word in builtins or word in CLAUDE_BUILTINS:
                found.append(f"`{word}` is a built-in tool; describe it in words (each provider names it differently)")
            continue
        name, inside = call.groups()
        if name not in schemas:
            found.append(f"`{span}` calls {name}, which is not one of our tools")
            continue
        schema = schemas[name]
        properties = schema.get("properties", {})
        assert isinstance(properties, dict)
        given: list[str] = []
        for arg in _top_level_args(inside):
            key, eq, _ = arg.partition("=")
            if not eq or not _NAME.match(key.strip()):
                found.append(f"`{span}`: write arguments as name=value, not {arg!r}")
                continue
            given.append(key.strip())
            if key.strip() not in properties:
                found.append(f"`{span}`: {name} has no argument {key.strip()!r} (it has {sorted(properties)})")
        required = schema.get("required", [])
        assert isinstance(required, list)
        missing = [r for r in required if r not in given]
        if missing:
            found.append(f"`{span}`: {name} also needs {missing}")
    return found


@pytest.fixture
def schemas(tmp_path: Path) -> dict[str, dict[str, object]]:
    return _schemas(tmp_path)


@pytest.fixture
def builtins(tmp_path: Path) -> set[str]:
    return {spec.name for spec in builtin_tools(tmp_path)}


def test_every_skill_the_issue_names_ships() -> None:
    assert [s.name for s in load_skills(resource("skills"))] == list(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_each_tool_a_skill_names_exists_with_those_arguments(
    name: str, schemas: dict[str, dict[str, object]], builtins: set[str]
) -> None:
    text = (resource("skills") / name / "SKILL.md").read_text(encoding="utf-8")
    assert problems(text, schemas, builtins) == []


def test_the_skills_name_the_tools_they_teach() -> None:
    """Guards the check above against passing because a skill names no tool at all."""
    named = {n: set(re.findall(r"`([a-z_]+)[(`]", (resource("skills") / n / "SKILL.md").read_text()))
             for n in SHIPPED}
    assert {"schedule_task", "list_tasks", "update_task", "cancel_task", "pause_task",
            "resume_task"} <= named["scheduling"]
    assert {"install_packages", "add_mcp_server", "create_agent"} <= named["self-customize"]
    assert "send_file" in named["files"]
    assert "request_credential" in named["web"]


@pytest.mark.parametrize("name", SHIPPED)
def test_each_skill_is_short_and_has_a_one_line_summary(name: str) -> None:
    (skill,) = [s for s in load_skills(resource("skills")) if s.name == name]
    assert len(skill.body.splitlines()) <= MAX_LINES
    assert 10 < len(summary(skill)) <= 160


def test_the_check_catches_a_wrong_tool_a_wrong_argument_and_a_builtin_name(
    schemas: dict[str, dict[str, object]], builtins: set[str]
) -> None:
    text = ("Use `schedule_task(prompt=\"x\", when=\"9:00\")`, `remind_me(text=\"x\")`, `send_file(text=\"hi\")` "
            "and `read_file` to read. Fine: `send_file(path=\"a, b.pdf\", text=\"{x, y}\")` and `send_message`.")
    assert problems(text, schemas, builtins) == [
        "`schedule_task(prompt=\"x\", when=\"9:00\")`: schedule_task has no argument 'when' (it has "
        "['process_after', 'prompt', 'recurrence', 'script'])",
        "`remind_me(text=\"x\")` calls remind_me, which is not one of our tools",
        "`send_file(text=\"hi\")`: send_file also needs ['path']",
        "`read_file` is a built-in tool; describe it in words (each provider names it differently)",
    ]
