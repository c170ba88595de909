"""Built-in tools of our own tool loop: what the model gets back, and how failures are reported to it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from agent_runner.tools.base import ToolError, ToolSpec
from agent_runner.tools.builtin import OUTPUT_CAP, builtin_tools, cap_output, html_to_text


@pytest.fixture
def tools(tmp_path: Path) -> dict[str, ToolSpec]:
    work = tmp_path / "work"
    work.mkdir()
    return {spec.name: spec for spec in builtin_tools(work)}


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path / "work"


async def run(tools: dict[str, ToolSpec], name: str, **args: Any) -> str:
    return await tools[name].handler(args)


def test_every_tool_has_an_object_schema_naming_its_required_arguments(tools: dict[str, ToolSpec]) -> None:
    assert set(tools) == {"bash", "read_file", "write_file", "edit_file", "glob", "grep", "web_fetch"}
    for spec in tools.values():
        assert spec.input_schema["type"] == "object"
        assert set(spec.input_schema["required"]) <= set(spec.input_schema["properties"])
        assert spec.description


# -- bash ----------------------------------------------------------------------------------------------------------


async def test_bash_runs_in_the_working_directory(tools: dict[str, ToolSpec], work: Path) -> None:
    assert (await run(tools, "bash", command="pwd")).strip() == str(work)


async def test_bash_merges_stderr_and_reports_a_failing_exit_code(tools: dict[str, ToolSpec]) -> None:
    output = await run(tools, "bash", command="echo out; echo err >&2; exit 3")
    assert "out" in output
    assert "err" in output
    assert output.endswith("[exit code 3]")


async def test_bash_timeout_kills_the_command_and_its_children(tools: dict[str, ToolSpec], work: Path) -> None:
    with pytest.raises(ToolError, match=r"timed out after 0.3 s") as caught:
        await run(tools, "bash", command="echo started; sleep 30 & echo $! > child.pid; wait", timeout=0.3)
    assert "started" in str(caught.value)
    child = int((work / "child.pid").read_text())
    assert not _alive(child)


async def test_cancelling_bash_kills_the_command(tools: dict[str, ToolSpec], work: Path) -> None:
    ready = work / "ready"
    os.mkfifo(ready)
    task = asyncio.create_task(run(tools, "bash", command="sleep 30 & echo $! > ready; wait"))
    child = int(await asyncio.to_thread(ready.read_text))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _alive(child)


async def test_bash_does_not_wait_for_background_jobs_holding_the_output(tools: dict[str, ToolSpec]) -> None:
    output = await run(tools, "bash", command="sleep 30 & echo done", timeout=60)
    assert output.strip() == "done"


async def test_bash_output_is_capped_keeping_head_and_tail(tools: dict[str, ToolSpec]) -> None:
    output = await run(tools, "bash", command="seq 1 100000")
    assert len(output) < OUTPUT_CAP + 200
    assert output.startswith("1\n2\n3\n")
    assert output.rstrip().endswith("99999\n100000")
    assert "characters omitted; output capped at 30000 characters" in output


async def test_bash_timeout_is_limited_to_ten_minutes(tools: dict[str, ToolSpec]) -> None:
    spec = tools["bash"]
    assert spec.declared_timeout_ms is not None
    assert spec.declared_timeout_ms >= 600_000
    with pytest.raises(ToolError, match="'timeout' must be a number"):
        await run(tools, "bash", command="true", timeout="soon")


def _alive(pid: int) -> bool:
    """Still running a program: an exiting process (memory already released, so no command line) or a zombie
    awaiting its reaper counts as gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status and "\nState:\tX" not in status and bool(cmdline)


# -- files ---------------------------------------------------------------------------------------------------------


async def test_write_then_read_resolves_relative_paths_against_the_working_directory(
    tools: dict[str, ToolSpec], work: Path
) -> None:
    reply = await run(tools, "write_file", path="deep/er/notes.md", content="alpha\nbeta\n")
    assert reply == f"Wrote 11 bytes to {work / 'deep/er/notes.md'}."
    assert (work / "deep/er/notes.md").read_text() == "alpha\nbeta\n"
    assert await run(tools, "read_file", path="deep/er/notes.md") == "     1\talpha\n     2\tbeta"


async def test_absolute_and_home_paths_are_used_as_given(
    tools: dict[str, ToolSpec], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere.txt"
    await run(tools, "write_file", path=str(elsewhere), content="x")
    assert elsewhere.read_text() == "x"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert await run(tools, "read_file", path="~/elsewhere.txt") == "     1\tx"


async def test_read_file_pages_with_offset_and_limit(tools: dict[str, ToolSpec], work: Path) -> None:
    (work / "long.txt").write_text("".join(f"line {n}\n" for n in range(1, 11)))
    page = await run(tools, "read_file", path="long.txt", offset=3, limit=2)
    assert page == "     3\tline 3\n     4\tline 4\n[... 6 more lines; read on with offset=5]"
    with pytest.raises(ToolError, match="has only 10 lines"):
        await run(tools, "read_file", path="long.txt", offset=11)


async def test_read_file_caps_huge_files(tools: dict[str, ToolSpec], work: Path) -> None:
    (work / "huge.txt").write_text("y" * 100 + "\n" + ("z" * 1000 + "\n") * 100)
    text = await run(tools, "read_file", path="huge.txt")
    assert len(text) <= OUTPUT_CAP + 100
    assert text.endswith("[... output capped; read on with a larger offset]")


async def test_read_file_refuses_missing_binary_and_folders(tools: dict[str, ToolSpec], work: Path) -> None:
    with pytest.raises(ToolError, match="does not exist"):
        await run(tools, "read_file", path="nope.txt")
    (work / "blob.bin").write_bytes(b"\x00\x01\x02")
    with pytest.raises(ToolError, match="binary file"):
        await run(tools, "read_file", path="blob.bin")
    with pytest.raises(ToolError, match="is a folder"):
        await run(tools, "read_file", path=".")
    with pytest.raises(ToolError, match="'path' must be a string"):
        await run(tools, "read_file", path=5)


async def test_edit_replaces_a_unique_match(tools: dict[str, ToolSpec], work: Path) -> None:
    (work / "app.py").write_text("x = 1\ny = 2\n")
    reply = await run(tools, "edit_file", path="app.py", old_string="y = 2", new_string="y = 3")
    assert reply == f"Replaced 1 occurrence in {work / 'app.py'}."
    assert (work / "app.py").read_text() == "x = 1\ny = 3\n"


async def test_edit_refuses_an_ambiguous_match_unless_replace_all(tools: dict[str, ToolSpec], work: Path) -> None:
    (work / "app.py").write_text("a = 0\na = 0\n")
    with pytest.raises(ToolError, match="appears 2 times"):
        await run(tools, "edit_file", path="app.py", old_string="a = 0", new_string="a = 1")
    assert (work / "app.py").read_text() == "a = 0\na = 0\n", "an ambiguous edit changes nothing"
    reply = await run(tools, "edit_file", path="app.py", old_string="a = 0", new_string="a = 1", replace_all=True)
    assert reply.startswith("Replaced 2 occurrences")
    assert (work / "app.py").read_text() == "a = 1\na = 1\n"


async def test_edit_refuses_missing_text_and_missing_files(tools: dict[str, ToolSpec], work: Path) -> None:
    (work / "app.py").write_text("hello\n")
    with pytest.raises(ToolError, match="was not found"):
        await run(tools, "edit_file", path="app.py", old_string="goodbye", new_string="x")
    with pytest.raises(ToolError, match="does not exist"):
        await run(tools, "edit_file", path="other.py", old_string="a", new_string="b")
    with pytest.raises(ToolError, match="nothing to change"):
        await run(tools, "edit_file", path="app.py", old_string="hello", new_string="hello")


# -- search --------------------------------------------------------------------------------------------------------


@pytest.fixture
def tree(work: Path) -> Path:
    (work / "src" / "pkg").mkdir(parents=True)
    (work / "src" / "pkg" / "core.py").write_text("def main():\n    return 'Hello'\n")
    (work / "src" / "util.py").write_text("HELLO = 1\n")
    (work / "README.md").write_text("hello readme\n")
    (work / ".git").mkdir()
    (work / ".git" / "config").write_text("hello from git\n")
    (work / "image.bin").write_bytes(b"hello\x00binary")
    return work


async def test_glob_matches_recursively_from_the_working_directory(
    tools: dict[str, ToolSpec], tree: Path
) -> None:
    found = (await run(tools, "glob", pattern="**/*.py")).splitlines()
    assert sorted(found) == [str(tree / "src/pkg/core.py"), str(tree / "src/util.py")]
    assert (await run(tools, "glob", pattern="*.py", path="src")) == str(tree / "src/util.py")
    assert (await run(tools, "glob", pattern=str(tree / "*.md"))) == str(tree / "README.md")
    assert (await run(tools, "glob", pattern="*.rs")).startswith("No files match")


async def test_grep_finds_lines_with_path_and_number(tools: dict[str, ToolSpec], tree: Path) -> None:
    found = await run(tools, "grep", pattern=r"hel+o", ignore_case=True)
    lines = set(found.splitlines())
    assert lines == {
        f"{tree / 'README.md'}:1: hello readme",
        f"{tree / 'src/pkg/core.py'}:2:     return 'Hello'",
        f"{tree / 'src/util.py'}:1: HELLO = 1",
    }, "binary files and .git are skipped"


async def test_grep_filters_by_folder_and_file_glob(tools: dict[str, ToolSpec], tree: Path) -> None:
    found = await run(tools, "grep", pattern="Hello", path="src", glob="*.py")
    assert found == f"{tree / 'src/pkg/core.py'}:2:     return 'Hello'"
    assert (await run(tools, "grep", pattern="Hello", glob="*.md")).startswith("No matches")
    assert "README.md:1:" in await run(tools, "grep", pattern="readme", path="README.md")


async def test_grep_reports_a_bad_regex(tools: dict[str, ToolSpec], tree: Path) -> None:
    with pytest.raises(ToolError, match="Invalid regular expression"):
        await run(tools, "grep", pattern="(unclosed")


# -- web fetch -----------------------------------------------------------------------------------------------------


@pytest.fixture
async def site() -> AsyncIterator[str]:
    async def page(request: web.Request) -> web.Response:
        return web.Response(
            text="<html><head><title>T</title><script>var x = 1;</script></head>"
            "<body><h1>Welcome</h1><p>Tea &amp; cake</p><style>p {}</style></body></html>",
            content_type="text/html",
        )

    async def plain(request: web.Request) -> web.Response:
        return web.Response(text="just text")

    async def big(request: web.Request) -> web.Response:
        return web.Response(text="w" * 100_000)

    app = web.Application()
    app.router.add_get("/page", page)
    app.router.add_get("/plain", plain)
    app.router.add_get("/big", big)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def test_web_fetch_returns_readable_text(tools: dict[str, ToolSpec], site: str) -> None:
    text = await run(tools, "web_fetch", url=f"{site}/page")
    assert text == "Welcome\n\nTea & cake"
    assert await run(tools, "web_fetch", url=f"{site}/plain") == "just text"


async def test_web_fetch_caps_large_pages(tools: dict[str, ToolSpec], site: str) -> None:
    text = await run(tools, "web_fetch", url=f"{site}/big")
    assert len(text) < OUTPUT_CAP + 200
    assert "characters omitted" in text


async def test_web_fetch_reports_http_errors_and_refuses_other_schemes(tools: dict[str, ToolSpec], site: str) -> None:
    with pytest.raises(ToolError, match="answered HTTP 404"):
        await run(tools, "web_fetch", url=f"{site}/missing")
    with pytest.raises(ToolError, match="Only http:// and https://"):
        await run(tools, "web_fetch", url="file:///etc/passwd")


async def test_web_fetch_reports_an_unreachable_host(tools: dict[str, ToolSpec]) -> None:
    with pytest.raises(ToolError, match="failed"):
        await run(tools, "web_fetch", url="http://127.0.0.1:1/")


def test_cap_output_leaves_short_text_alone() -> None:
    assert cap_output("short") == "short"
    capped = cap_output("a" * 50 + "b" * 50, cap=20)
    assert capped.startswith("a" * 10)
    assert capped.endswith("b" * 10)
    assert "80 characters omitted" in capped


def test_html_to_text_drops_scripts_and_keeps_blocks_apart() -> None:
    assert html_to_text("<div>one</div><div>two<script>x()</script></div>") == "one\n\ntwo"


def test_pid_helper_sees_this_process() -> None:
    assert _alive(os.getpid())
