"""The system prompt: identity, destinations, wrapping rules, memory and skills (reference §8.2 destinations)."""

from __future__ import annotations

from pathlib import Path

from agent_runner.config import RunnerConfig
from agent_runner.prompt import MAX_FILE_CHARS, build
from agent_runner.protocol import Destination

DESTS = [
    Destination(name="family", display_name="Family chat", type="channel", channel_type="telegram", platform_id="-1"),
    Destination(name="helper", display_name="Helper", type="agent", agent_group_id="ag-2"),
]


def config(tmp_path: Path, **kwargs: object) -> RunnerConfig:
    return RunnerConfig(session_dir=tmp_path / "s", agent_dir=tmp_path / "agent", skills_dir=tmp_path / "skills",
                        **kwargs)  # type: ignore[arg-type]


def test_the_prompt_names_the_assistant_its_destinations_and_the_wrapping_rule(tmp_path: Path) -> None:
    text = build(config(tmp_path, assistant_name="Jarvis"), DESTS)
    assert text.startswith("You are Jarvis")
    assert '- "family": a chat (Family chat)' in text
    assert '- "helper": another agent (Helper)' in text
    assert '<message to="NAME">' in text
    assert "<internal>" in text
    assert "-1" not in text.split("## Your destinations")[1].split("##")[0].replace('"family"', "")


def test_without_destinations_the_prompt_says_nothing_can_be_delivered(tmp_path: Path) -> None:
    assert "nothing you write can be delivered" in build(config(tmp_path), [])


def test_the_memory_file_is_created_and_its_contents_included(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert "It is empty so far." in build(cfg, DESTS)
    memory = tmp_path / "agent" / "MEMORY.md"
    assert memory.exists()
    memory.write_text("Alice is vegetarian.")
    text = build(cfg, DESTS)
    assert str(memory) in text
    assert "Alice is vegetarian." in text


def test_skills_are_included_by_folder_name(tmp_path: Path) -> None:
    skills = tmp_path / "skills"
    (skills / "weather").mkdir(parents=True)
    (skills / "weather" / "SKILL.md").write_text("Use wttr.in for forecasts.")
    (skills / "cooking").mkdir()
    (skills / "cooking" / "instructions.md").write_text("Prefer metric units.")
    (skills / ".hidden").mkdir()
    (skills / ".hidden" / "SKILL.md").write_text("secret")
    text = build(config(tmp_path), DESTS)
    assert text.index("### cooking\nPrefer metric units.") < text.index("### weather\nUse wttr.in for forecasts.")
    assert "secret" not in text


def test_a_huge_memory_file_is_cut(tmp_path: Path) -> None:
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "MEMORY.md").write_text("x" * (MAX_FILE_CHARS + 100))
    assert "cut here" in build(config(tmp_path), DESTS)
