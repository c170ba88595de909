"""``nanoclaw agents ...`` through the real entry point: the same actions and refusals as the page, no host running."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from nanoclaw_app.cli import main
from nanoclaw_app.paths import Paths


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["agents", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_create_list_show_and_set(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "create", "Research helper", "--provider", "openai", "--model", "gpt-4.1")
    assert code == 0
    assert "created Research helper" in out
    assert "Chats page" in out
    (listed,) = run_json(capsys, "list")
    assert (listed["name"], listed["provider"], listed["model"]) == ("Research helper", "openai", "gpt-4.1")

    changed = run_json(capsys, "set", "research-helper", "--model", "", "--assistant-name", "Res")
    assert (changed["model"], changed["assistant_name"]) == (None, "Res")
    code, out, _ = run(capsys, "show", "Research Helper")
    assert code == 0
    assert "(provider default)" in out

    code, _, err = run(capsys, "set", "research-helper")
    assert code == 1
    assert "nothing to change" in err
    code, _, err = run(capsys, "create", "research helper")
    assert code == 1
    assert "exists already" in err


def test_memory_edit_from_a_file_and_from_the_editor(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run(capsys, "create", "Nano")
    notes = tmp_path / "notes.md"
    notes.write_text("# Nano\nSam likes tea.\n", encoding="utf-8")
    code, out, _ = run(capsys, "memory", "edit", "Nano", "--file", str(notes))
    assert code == 0
    assert "saved the memory of Nano" in out

    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys\nwith open(sys.argv[1], 'a', encoding='utf-8') as f:\n    f.write('And coffee.\\n')\n",
        encoding="utf-8",
    )
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"{shlex.quote(sys.executable)} {shlex.quote(str(editor))}")
    assert run(capsys, "memory", "edit", "Nano")[0] == 0
    code, out, _ = run(capsys, "memory", "show", "Nano")
    assert out == "# Nano\nSam likes tea.\nAnd coffee.\n"
    memory_file = Paths.from_env().agents / "nano" / "MEMORY.md"
    assert memory_file.read_text(encoding="utf-8") == out

    monkeypatch.setenv("EDITOR", "false")
    code, _, err = run(capsys, "memory", "edit", "Nano")
    assert code == 1
    assert "nothing was saved" in err
    monkeypatch.delenv("EDITOR")
    code, _, err = run(capsys, "memory", "edit", "Nano")
    assert code == 1
    assert "set $EDITOR" in err


def test_mounts_are_refused_until_the_allowlist_allows_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run(capsys, "create", "Nano")
    folder = tmp_path / "projects" / "notes"
    folder.mkdir(parents=True)
    code, _, err = run(capsys, "mounts", "add", "Nano", str(folder))
    assert code == 1
    assert "the mount allowlist allows no folders yet" in err

    roots = run_json(capsys, "mounts", "allow", str(tmp_path / "projects"), "--rw")
    assert roots["roots"][0]["allow_read_write"] is True
    view = run_json(capsys, "mounts", "add", "Nano", str(folder), "--as", "notes", "--rw")
    assert [(m["target"], m["read_only"]) for m in view["mounts"]] == [("/workspace/extra/notes", False)]
    code, _, err = run(capsys, "mounts", "add", "Nano", str(Paths.from_env().home))
    assert code == 1
    assert "would expose NanoClaw's own data" in err

    assert run_json(capsys, "mounts", "remove", "Nano", str(folder))["mounts"] == []
    code, _, err = run(capsys, "mounts", "remove", "Nano", str(folder))
    assert code == 1
    assert "has no extra folder" in err
    assert run_json(capsys, "mounts", "disallow", str(tmp_path / "projects"))["roots"] == []


def test_packages_and_mcp_servers(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    run(capsys, "create", "Nano")
    code, out, _ = run(capsys, "packages", "add", "Nano", "--apt", "ffmpeg", "--pip", "pandas")
    assert code == 0
    assert "a new image is built" in out
    assert run_json(capsys, "packages", "remove", "Nano", "--apt", "ffmpeg")["apt"] == []
    code, _, err = run(capsys, "packages", "add", "Nano", "--apt", "Bad Name")
    assert code == 1
    assert "invalid apt package names" in err

    monkeypatch.setenv("GH_TOKEN_FOR_TEST", "ghp_from_env")
    code, out, _ = run(capsys, "mcp", "add", "Nano", "github", "--env", "GITHUB_TOKEN=ghp_x", "--env",
                       "GH_TOKEN_FOR_TEST", "npx", "--", "-y", "server-github")
    assert code == 0
    assert "GITHUB_TOKEN=••••••" in out
    assert "ghp_" not in out
    (server,) = run_json(capsys, "mcp", "list", "Nano")
    assert server["args"] == ["-y", "server-github"]
    assert server["env"] == {"GITHUB_TOKEN": "••••••", "GH_TOKEN_FOR_TEST": "••••••"}
    code, _, err = run(capsys, "mcp", "add", "Nano", "other", "x", "--env", "UNSET_VARIABLE_XYZ")
    assert code == 1
    assert "not set in your environment" in err
    assert run_json(capsys, "mcp", "remove", "Nano", "github") == []


def test_restart_and_delete_without_a_running_host(capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "create", "Nano")
    code, out, _ = run(capsys, "restart", "Nano")
    assert code == 0
    assert "NanoClaw is not running" in out
    result = run_json(capsys, "delete", "Nano")
    assert result["name"] == "Nano"
    assert (Path(result["moved_to"]) / "workspace" / "MEMORY.md").is_file()
    code, _, err = run(capsys, "show", "Nano")
    assert code == 1
    assert "no agent 'Nano'" in err
