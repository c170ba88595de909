"""``python -m agent_runner`` as a container runs it: a real process over a real session folder, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.runner.conftest import TIMEOUT, Session, until

REPO = Path(__file__).resolve().parents[2]


async def test_the_runner_process_answers_and_exits_cleanly_on_sigterm(session: Session, tmp_path: Path) -> None:
    await session.chat("hello from the host")
    env = {
        **os.environ,
        "NANOCLAW_SESSION_DIR": str(session.folder),
        "NANOCLAW_AGENT_DIR": str(tmp_path / "agent"),
        "NANOCLAW_SKILLS_DIR": str(tmp_path / "skills"),
        "NANOCLAW_PROVIDER": "tests.fakes.provider:ScriptedProvider",
        "NANOCLAW_POLL_SECONDS": "0.5",
        "NANOCLAW_TZ_NAME": "Europe/Berlin",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent_runner", cwd=REPO, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        await until(session.outbound, "the subprocess's reply")
        await session.chat("and again")
        await until(lambda: len(session.outbound()) == 2, "the second reply")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(TIMEOUT):
            _, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    assert session.texts() == ["echo: hello from the host", "echo: and again"]
    assert session.state("continuation:scripted") == "conv-1"
    assert (tmp_path / "agent" / "MEMORY.md").exists()


async def test_an_unknown_provider_exits_with_an_error(session: Session) -> None:
    env = {**os.environ, "NANOCLAW_SESSION_DIR": str(session.folder), "NANOCLAW_PROVIDER": "gemini"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent_runner", cwd=REPO, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(TIMEOUT):
        _, stderr = await proc.communicate()
    assert proc.returncode == 2
    assert b"unknown provider 'gemini'" in stderr
