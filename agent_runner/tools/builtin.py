"""Built-in tools for our own tool loop (``anthropic``/``openai`` providers): shell, files, search, web fetch.

The container is the sandbox, so these tools do not restrict paths; they only keep outputs small enough for the
model's context and turn every failure into a ``ToolError`` the model can read and act on. Relative paths resolve
against the query's working directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import glob as globlib
import html
import os
import re
import signal
from collections import deque
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from agent_runner.tools.base import ToolError, ToolSpec

OUTPUT_CAP = 30_000
"""Characters of any tool output the model sees."""
BASH_DEFAULT_TIMEOUT = 120.0
BASH_MAX_TIMEOUT = 600.0
BASH_DRAIN_GRACE = 1.0
"""Seconds to keep reading output after the command exits (or is killed) before giving up on the pipe."""
READ_DEFAULT_LINES = 2000
READ_LINE_CAP = 2000
"""Characters per line shown by read_file."""
GLOB_MAX_RESULTS = 1000
GREP_MAX_MATCHES = 500
GREP_MAX_FILE_BYTES = 5_000_000
FETCH_TIMEOUT = 30.0
FETCH_MAX_BYTES = 5_000_000
SKIP_DIRS = frozenset({".git", "node_modules", "__pycache__", ".venv", ".mypy_cache", ".ruff_cache"})


def builtin_tools(cwd: Path) -> list[ToolSpec]:
    """The tools, bound to ``cwd``."""
    tools = _BuiltinTools(cwd)
    return [
        ToolSpec(
            name="bash",
            description=(
                "Run a bash command in the working directory and return its combined stdout and stderr. "
                f"Default timeout {int(BASH_DEFAULT_TIMEOUT)} s, at most {int(BASH_MAX_TIMEOUT)} s; "
                f"output beyond {OUTPUT_CAP} characters is cut in the middle. Background jobs are stopped when the "
                "command ends; start a long-running server with setsid and its output redirected to a file."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The command line."},
                    "timeout": {"type": "number", "description": "Seconds before the command is killed."},
                },
                "required": ["command"],
            },
            handler=tools.bash,
            declared_timeout_ms=int(BASH_MAX_TIMEOUT * 1000) + 10_000,
        ),
        ToolSpec(
            name="read_file",
            description=(
                "Read a text file, with line numbers. Use offset (1-based first line) and limit (number of lines) "
                "for large files."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "offset": {"type": "integer", "minimum": 1},
                    "limit": {"type": "integer", "minimum": 1},
                },
                "required": ["path"],
            },
            handler=tools.read_file,
        ),
        ToolSpec(
            name="write_file",
            description="Create or overwrite a text file (parent folders are created).",
            input_schema={
                "type": "object",
                "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                "required": ["path", "content"],
            },
            handler=tools.write_file,
        ),
        ToolSpec(
            name="edit_file",
            description=(
                "Replace old_string with new_string in a file. old_string must match exactly once unless "
                "replace_all is true; include surrounding lines to make it unique."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "old_string": {"type": "string"},
                    "new_string": {"type": "string"},
                    "replace_all": {"type": "boolean"},
                },
                "required": ["path", "old_string", "new_string"],
            },
            handler=tools.edit_file,
        ),
        ToolSpec(
            name="glob",
            description="List files matching a glob pattern such as 'src/**/*.py' (newest first).",
            input_schema={
                "type": "object",
                "properties": {
                    "pattern": {"type": "string"},
                    "path": {"type": "string", "description": "Folder to search from (default: working directory)."},
                },
                "required": ["pattern"],
            },
            handler=tools.glob,
        ),
        ToolSpec(
            name="grep",
            description=(
                "Search file contents with a Python regular expression; prints path:line: text. "
                "Optionally limit to a folder or file (path) and to file names matching a glob (e.g. '*.py')."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "pattern": {"type": "string"},
                    "path": {"type": "string"},
                    "glob": {"type": "string"},
                    "ignore_case": {"type": "boolean"},
                },
                "required": ["pattern"],
            },
            handler=tools.grep,
        ),
        ToolSpec(
            name="web_fetch",
            description="Fetch an http(s) URL and return its text (HTML is reduced to readable text).",
            input_schema={
                "type": "object",
                "properties": {"url": {"type": "string"}},
                "required": ["url"],
            },
            handler=tools.web_fetch,
            declared_timeout_ms=int(FETCH_TIMEOUT * 1000) * 2,
        ),
    ]


def cap_output(text: str, cap: int = OUTPUT_CAP) -> str:
    """Keep the head and the tail (errors are usually at the end) with a note of what was cut."""
    if len(text) <= cap:
        return text
    half = cap // 2
    omitted = len(text) - 2 * half
    note = f"[... {omitted} characters omitted; output capped at {cap} characters ...]"
    return f"{text[:half]}\n\n{note}\n\n{text[-half:]}"


def _str(args: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = args.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ToolError(f"'{key}' must be a string.")
    return value


def _number(args: dict[str, Any], key: str, default: float) -> float:
    value = args.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolError(f"'{key}' must be a number.")
    return float(value)


def _is_binary(sample: bytes) -> bool:
    return b"\0" in sample


class _BuiltinTools:
    """Handlers sharing the working directory."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd

    def resolve(self, raw: str) -> Path:
        """Relative paths (and ``~``) resolve against the working directory."""
        if not raw.strip():
            raise ToolError("The path is empty.")
        path = Path(raw).expanduser()
        return path if path.is_absolute() else self.cwd / path

    # -- bash ------------------------------------------------------------------------------------------------------

    async def bash(self, args: dict[str, Any]) -> str:
        """Run in a new process group so a timeout (or abort) kills the whole command tree."""
        command = _str(args, "command")
        timeout = min(max(_number(args, "timeout", BASH_DEFAULT_TIMEOUT), 0.1), BASH_MAX_TIMEOUT)
        if not self.cwd.is_dir():
            raise ToolError(f"The working directory {self.cwd} does not exist.")
        collector = _HeadTail(OUTPUT_CAP)
        loop = asyncio.get_running_loop()
        spawn = asyncio.ensure_future(
            loop.subprocess_exec(
                lambda: _CommandProtocol(collector),
                "bash",
                "-c",
                command,
                cwd=self.cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        )
        try:
            transport, protocol = await asyncio.shield(spawn)
        except asyncio.CancelledError:
            # Aborted while starting: the command may already run, so finish starting it to kill its group.
            with contextlib.suppress(Exception):
                started, started_protocol = await spawn
                _kill_group(started.get_pid())
                await _wait_briefly(started_protocol.closed)
                started.close()
            raise
        timed_out = False
        try:
            try:
                await asyncio.wait_for(protocol.exited.wait(), timeout)
            except TimeoutError:
                timed_out = True
            else:
                # Background children may still hold the output pipe; give them a moment to finish writing.
                await _wait_briefly(protocol.closed)
        finally:
            # Anything left in the command's process group (timeouts, stray background jobs) goes now.
            _kill_group(transport.get_pid())
            await _wait_briefly(protocol.closed)
            transport.close()
        output = collector.text()
        if timed_out:
            raise ToolError(f"{output}\n[The command timed out after {timeout:g} s and was killed.]".lstrip())
        code = transport.get_returncode()
        if code:
            return f"{output}\n[exit code {code}]".lstrip()
        return output or "(no output)"

    # -- files -----------------------------------------------------------------------------------------------------

    async def read_file(self, args: dict[str, Any]) -> str:
        """Numbered lines like ``cat -n`` so the model can cite and edit them."""
        path = self.resolve(_str(args, "path"))
        offset = int(_number(args, "offset", 1))
        limit = int(_number(args, "limit", READ_DEFAULT_LINES))
        if offset < 1 or limit < 1:
            raise ToolError("offset and limit must be at least 1.")
        return await asyncio.to_thread(self._read, path, offset, limit)

    def _read(self, path: Path, offset: int, limit: int) -> str:
        if path.is_dir():
            raise ToolError(f"{path} is a folder; use glob to list it.")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ToolError(f"{path} does not exist.") from None
        except OSError as exc:
            raise ToolError(f"Cannot read {path}: {exc.strerror or exc}") from None
        if _is_binary(data[:8192]):
            raise ToolError(f"{path} is a binary file ({len(data)} bytes).")
        lines = data.decode("utf-8", errors="replace").splitlines()
        if not lines:
            return f"({path} is empty)"
        if offset > len(lines):
            raise ToolError(f"{path} has only {len(lines)} lines.")
        end = min(len(lines), offset - 1 + limit)
        shown = []
        for number in range(offset, end + 1):
            line = lines[number - 1]
            if len(line) > READ_LINE_CAP:
                line = line[:READ_LINE_CAP] + " [line cut]"
            shown.append(f"{number:>6}\t{line}")
        text = "\n".join(shown)
        if len(text) > OUTPUT_CAP:
            text = text[:OUTPUT_CAP] + "\n[... output capped; read on with a larger offset]"
        elif end < len(lines):
            text += f"\n[... {len(lines) - end} more lines; read on with offset={end + 1}]"
        return text

    async def write_file(self, args: dict[str, Any]) -> str:
        """Create or overwrite as UTF-8."""
        path = self.resolve(_str(args, "path"))
        content = _str(args, "content")
        return await asyncio.to_thread(self._write, path, content)

    @staticmethod
    def _write(path: Path, content: str) -> str:
        if path.is_dir():
            raise ToolError(f"{path} is a folder.")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        except OSError as exc:
            raise ToolError(f"Cannot write {path}: {exc.strerror or exc}") from None
        return f"Wrote {len(content.encode('utf-8'))} bytes to {path}."

    async def edit_file(self, args: dict[str, Any]) -> str:
        """Exact-string replacement; refuses a missing or ambiguous match rather than guessing."""
        path = self.resolve(_str(args, "path"))
        old = _str(args, "old_string")
        new = _str(args, "new_string")
        replace_all = bool(args.get("replace_all", False))
        return await asyncio.to_thread(self._edit, path, old, new, replace_all)

    @staticmethod
    def _edit(path: Path, old: str, new: str, replace_all: bool) -> str:
        if not old:
            raise ToolError("old_string is empty; use write_file to create a file.")
        if old == new:
            raise ToolError("old_string and new_string are the same; nothing to change.")
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ToolError(f"{path} does not exist.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ToolError(f"Cannot read {path} as text: {exc}") from None
        count = text.count(old)
        if count == 0:
            raise ToolError(f"old_string was not found in {path}; read the file and copy the text exactly.")
        if count > 1 and not replace_all:
            raise ToolError(
                f"old_string appears {count} times in {path}; include more surrounding text to make it unique, "
                "or set replace_all to true."
            )
        updated = text.replace(old, new) if replace_all else text.replace(old, new, 1)
        try:
            path.write_text(updated, encoding="utf-8")
        except OSError as exc:
            raise ToolError(f"Cannot write {path}: {exc.strerror or exc}") from None
        replaced = count if replace_all else 1
        return f"Replaced {replaced} occurrence{'s' if replaced != 1 else ''} in {path}."

    # -- search ----------------------------------------------------------------------------------------------------

    async def glob(self, args: dict[str, Any]) -> str:
        """Newest first, so recently touched files come up top."""
        pattern = _str(args, "pattern")
        base = self.resolve(_str(args, "path", required=False) or ".")
        return await asyncio.to_thread(self._glob, pattern, base)

    @staticmethod
    def _glob(pattern: str, base: Path) -> str:
        if not pattern.strip():
            raise ToolError("The pattern is empty.")
        if not base.is_dir():
            raise ToolError(f"{base} is not a folder.")
        # glob.glob, not Path.glob: it also takes absolute patterns and '**' with root_dir.
        found = [Path(p) for p in globlib.glob(pattern, root_dir=base, recursive=True)]  # noqa: PTH207
        paths = [p if p.is_absolute() else base / p for p in found]
        files = [p for p in paths if p.is_file()]

        def mtime(p: Path) -> float:
            try:
                return p.stat().st_mtime
            except OSError:
                return 0.0

        files.sort(key=lambda p: (-mtime(p), str(p)))
        if not files:
            return f"No files match {pattern!r} in {base}."
        lines = [str(p) for p in files[:GLOB_MAX_RESULTS]]
        if len(files) > GLOB_MAX_RESULTS:
            lines.append(f"[... {len(files) - GLOB_MAX_RESULTS} more files; narrow the pattern]")
        return cap_output("\n".join(lines))

    async def grep(self, args: dict[str, Any]) -> str:
        """Pure Python, so it works in any image; skips binary, huge and tool-cache files."""
        pattern = _str(args, "pattern")
        flags = re.IGNORECASE if args.get("ignore_case") else 0
        try:
            regex = re.compile(pattern, flags)
        except re.error as exc:
            raise ToolError(f"Invalid regular expression: {exc}") from None
        base = self.resolve(_str(args, "path", required=False) or ".")
        name_glob = _str(args, "glob", required=False)
        return await asyncio.to_thread(self._grep, regex, base, name_glob)

    def _grep(self, regex: re.Pattern[str], base: Path, name_glob: str) -> str:
        if not base.exists():
            raise ToolError(f"{base} does not exist.")
        matches: list[str] = []
        more = False
        for file in self._walk(base, name_glob):
            try:
                if file.stat().st_size > GREP_MAX_FILE_BYTES:
                    continue
                data = file.read_bytes()
            except OSError:
                continue
            if _is_binary(data[:8192]):
                continue
            for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
                if regex.search(line):
                    if len(matches) >= GREP_MAX_MATCHES:
                        more = True
                        break
                    shown = line if len(line) <= 500 else line[:500] + " [line cut]"
                    matches.append(f"{file}:{number}: {shown}")
            if more:
                break
        if not matches:
            return f"No matches for {regex.pattern!r} in {base}."
        if more:
            matches.append(f"[... stopped after {GREP_MAX_MATCHES} matches; narrow the search]")
        return cap_output("\n".join(matches))

    @staticmethod
    def _walk(base: Path, name_glob: str) -> list[Path]:
        def wanted(path: Path) -> bool:
            if not name_glob:
                return True
            relative = str(path.relative_to(base)) if path != base else path.name
            return fnmatch.fnmatch(path.name, name_glob) or fnmatch.fnmatch(relative, name_glob)

        if base.is_file():
            return [base]
        files: list[Path] = []
        for root, dirs, names in os.walk(base):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            files.extend(p for p in (Path(root) / n for n in sorted(names)) if wanted(p))
        return files

    # -- web -------------------------------------------------------------------------------------------------------

    async def web_fetch(self, args: dict[str, Any]) -> str:
        """http(s) only, size- and time-capped; HTML reduced to text."""
        url = _str(args, "url").strip()
        if not re.match(r"^https?://", url, re.IGNORECASE):
            raise ToolError("Only http:// and https:// URLs can be fetched.")
        import httpx  # here, not at the top: a runner that never fetches the web should not pay for it at start

        try:
            async with (
                httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=True, max_redirects=5) as client,
                client.stream("GET", url, headers={"User-Agent": "NanoClaw-agent/1.0"}) as response,
            ):
                body = bytearray()
                truncated = False
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > FETCH_MAX_BYTES:
                        truncated = True
                        break
                status = response.status_code
                content_type = response.headers.get("content-type", "")
                encoding = response.encoding or "utf-8"
        except httpx.TimeoutException:
            raise ToolError(f"Fetching {url} timed out after {FETCH_TIMEOUT:g} s.") from None
        except httpx.HTTPError as exc:
            raise ToolError(f"Fetching {url} failed: {exc}") from None
        text = bytes(body[:FETCH_MAX_BYTES]).decode(encoding, errors="replace")
        if "html" in content_type.lower() or text.lstrip()[:15].lower().startswith(("<!doctype html", "<html")):
            text = html_to_text(text)
        if status >= 400:
            raise ToolError(f"{url} answered HTTP {status}:\n{cap_output(text, 2000)}")
        if truncated:
            text += f"\n[... download stopped at {FETCH_MAX_BYTES} bytes]"
        return cap_output(text) or "(empty response)"


class _HeadTail:
    """Keeps the first and last ``cap // 2`` bytes of a stream and counts the rest."""

    def __init__(self, cap: int) -> None:
        self.half = cap // 2
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_size = 0
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.half - len(self.head)
        if room > 0:
            self.head.extend(chunk[:room])
            chunk = chunk[room:]
        if chunk:
            self.tail.append(chunk)
            self.tail_size += len(chunk)
            while self.tail and self.tail_size - len(self.tail[0]) >= self.half:
                self.tail_size -= len(self.tail.popleft())

    def text(self) -> str:
        tail = b"".join(self.tail)
        if self.total <= 2 * self.half:
            return (bytes(self.head) + tail).decode("utf-8", errors="replace")
        tail = tail[-self.half :]
        omitted = self.total - len(self.head) - len(tail)
        return (
            bytes(self.head).decode("utf-8", errors="replace")
            + f"\n\n[... {omitted} characters omitted; output capped at {2 * self.half} characters ...]\n\n"
            + tail.decode("utf-8", errors="replace")
        )


class _CommandProtocol(asyncio.SubprocessProtocol):
    """Collects output and tells apart "the command exited" from "every holder of its output pipe is gone".

    ``Process.wait()`` waits for both, so a background job keeping stdout open would block it until the timeout.
    """

    def __init__(self, collector: _HeadTail) -> None:
        self.collector = collector
        self.exited = asyncio.Event()
        self.closed = asyncio.Event()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.collector.add(data)

    def process_exited(self) -> None:
        self.exited.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.exited.set()
        self.closed.set()


async def _wait_briefly(event: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), BASH_DRAIN_GRACE)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class _TextExtractor(HTMLParser):
    """Visible text of an HTML page: scripts and styles dropped, block elements on their own lines."""

    BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre"})
    HIDDEN = frozenset({"script", "style", "noscript", "template", "svg", "head"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Readable text from HTML, whitespace collapsed."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    text = html.unescape("".join(parser.parts))
    lines = (re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
