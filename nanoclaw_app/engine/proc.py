"""Running the operating system's tools and reading what they print.

Windows tools do not agree on an encoding (``wsl.exe`` prints UTF-16 unless ``WSL_UTF8=1`` is set, and older builds
ignore that), and long commands such as ``podman machine init`` redraw a progress bar with carriage returns, so output
is decoded here and split on both line ends before anyone reads it.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

STOP_GRACE = 5.0
"""How long a tool gets to exit after SIGTERM (or TerminateProcess's gentler cousin) before it is killed."""
TAIL_LINES = 40


@dataclass(frozen=True, slots=True)
class Result:
    """How a tool ended and what it printed (for ``stream``: the last lines only)."""

    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        """Everything it printed, stderr first: the part a failure report quotes."""
        return "\n".join(part for part in (self.err.strip(), self.out.strip()) if part)


def decode(data: bytes) -> str:
    """Text from a Windows or Unix tool, whether it printed UTF-16 (with or without a BOM) or UTF-8."""
    if data.startswith(codecs.BOM_UTF16_LE):
        return data[2:].decode("utf-16-le", errors="replace")
    # UTF-16 without a BOM: ASCII text has a NUL in every second byte.
    if len(data) >= 4 and data[1::2].count(0) >= len(data) // 4:
        return data.decode("utf-16-le", errors="replace").replace("\x00", "")
    return data.decode("utf-8", errors="replace").replace("\x00", "")


def environment(extra: Mapping[str, str] | None) -> dict[str, str] | None:
    """The app's environment plus ``extra`` (None keeps it as it is)."""
    return None if not extra else {**os.environ, **extra}


async def run(argv: list[str], *, limit: float, env: Mapping[str, str] | None = None,
              kill_on_cancel: bool = True) -> Result:
    """Run a tool to its end: (code, stdout, stderr).

    On timeout or cancellation it is stopped, unless it is an installer the user is looking at
    (``kill_on_cancel=False``), which is left to finish on its own.
    """
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=environment(env),
    )
    try:
        async with asyncio.timeout(limit):
            out, err = await proc.communicate()
    except BaseException:
        if kill_on_cancel:
            await stop(proc)
        raise
    return Result(proc.returncode or 0, decode(out), decode(err))


async def stream(argv: list[str], on_line: Callable[[str], None], *, limit: float,
                 env: Mapping[str, str] | None = None) -> Result:
    """Run a tool and hand every line it prints (stdout and stderr, split on CR and LF) to ``on_line``.

    The result keeps the last lines of each stream, enough to explain a failure.
    """
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=environment(env),
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    tails: tuple[deque[str], deque[str]] = (deque(maxlen=TAIL_LINES), deque(maxlen=TAIL_LINES))

    async def pump(reader: asyncio.StreamReader, tail: deque[str]) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        while chunk := await reader.read(4096):
            pending += decoder.decode(chunk)
            *lines, pending = pending.replace("\r\n", "\n").replace("\r", "\n").split("\n")
            for line in lines:
                _deliver(line, tail, on_line)
        _deliver(pending + decoder.decode(b"", final=True), tail, on_line)

    try:
        async with asyncio.timeout(limit):
            await asyncio.gather(pump(proc.stdout, tails[0]), pump(proc.stderr, tails[1]))
            code = await proc.wait()
    except BaseException:
        await stop(proc)
        raise
    return Result(code, "\n".join(tails[0]), "\n".join(tails[1]))


def _deliver(line: str, tail: deque[str], on_line: Callable[[str], None]) -> None:
    line = line.strip()
    if not line:
        return
    tail.append(line)
    try:
        on_line(line)
    except Exception:  # a progress reader's bug must not stop the tool it watches
        log.exception("reading a line of tool output failed: %r", line)


async def stop(proc: asyncio.subprocess.Process) -> None:
    """Ask a tool to stop, then kill it, and reap it (never leaves a zombie)."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), STOP_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    await proc.wait()
