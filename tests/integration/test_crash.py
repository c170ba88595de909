"""Crash test: a real host process is SIGKILLed at random points while 200 messages flow through it.

After the last restart every message must end delivered exactly once or explicitly failed: zero lost, zero duplicated.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from nanoclaw_app.core.messages import InboundMessage

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 200
KILLS = 24
REPLY = re.compile(r"echo: crash-msg \d+")

pytestmark = pytest.mark.slow


def start_host(workdir: Path, env: dict[str, str], *, quiet: bool = False) -> subprocess.Popen[str]:
    out = subprocess.DEVNULL if quiet else subprocess.PIPE
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.crash_host", str(workdir)],
        cwd=ROOT, env=env, stdout=out, stderr=out, text=True,
    )


def append_messages(feed: Path, start: int, count: int) -> None:
    with feed.open("a", encoding="utf-8") as handle:
        for n in range(start, start + count):
            msg = InboundMessage(channel_type="test", platform_id="owner", message_id=f"crash-{n}",
                                 sender_id="owner", sender_name="Owner", text=f"crash-msg {n}")
            handle.write(msg.to_json() + "\n")


def outcomes(workdir: Path, home: Path) -> tuple[Counter[str], set[str]]:
    """Replies seen by the 'platform', and input texts that ended explicitly failed."""
    sent: Counter[str] = Counter()
    out = workdir / "out.jsonl"
    if out.exists():
        for line in out.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            text = json.loads(line)["text"]
            # Only the agent's replies count; the owner also gets "could not be delivered" notices.
            if REPLY.fullmatch(text):
                sent[text] += 1
    failed: set[str] = set()
    for inbound in (home / "sessions").glob("*/*/inbound.db"):
        # Plain (not read-only) connections: a database left by a SIGKILL may need its WAL recovered first, which any
        # SQLite connection does on open but a read-only one cannot ("attempt to write a readonly database").
        conn = sqlite3.connect(inbound, timeout=5)
        try:
            conn.execute("ATTACH DATABASE ? AS ob", (str(inbound.parent / "outbound.db"),))
            for (content,) in conn.execute("SELECT content FROM messages_in WHERE status = 'failed'"):
                failed.add(json.loads(content)["text"])
            rows = conn.execute(
                "SELECT i.content FROM delivered d JOIN ob.messages_out o ON o.id = d.message_out_id"
                " JOIN messages_in i ON i.id = o.in_reply_to WHERE d.status = 'failed'"
            )
            for (content,) in rows:
                failed.add(json.loads(content)["text"])
        finally:
            conn.close()
    return sent, failed


def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    home = tmp_path / "home"
    env = {**os.environ, "NANOCLAW_HOME": str(home), "NANOCLAW_CONFIG_DIR": str(tmp_path / "cfg"),
           "PYTHONPATH": str(ROOT)}
    feed = workdir / "feed.jsonl"
    rng = random.Random(20261121)
    per_round = MESSAGES // KILLS + 1
    written = 0
    for _ in range(KILLS):
        count = min(per_round, MESSAGES - written)
        append_messages(feed, written, count)
        written += count
        proc = start_host(workdir, env, quiet=True)
        time.sleep(rng.uniform(0.05, 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    if written < MESSAGES:
        append_messages(feed, written, MESSAGES - written)

    proc = start_host(workdir, env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        deadline = time.monotonic() + 120
        expected = {f"crash-msg {n}" for n in range(MESSAGES)}
        while time.monotonic() < deadline:
            sent, failed = outcomes(workdir, home)
            answered = {text.removeprefix("echo: ") for text in sent}
            if expected <= answered | failed:
                break
            time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()

    sent, failed = outcomes(workdir, home)
    duplicated = {text: n for text, n in sent.items() if n > 1}
    answered = {text.removeprefix("echo: ") for text in sent}
    lost = sorted(expected - answered - failed)
    assert duplicated == {}, f"sent more than once: {duplicated}"
    assert lost == [], f"neither delivered nor explicitly failed: {lost}"
    assert len(answered) + len(failed - answered) == MESSAGES
    # The point of the test is recovery, not failure: most messages must really arrive.
    print(json.dumps({"messages": MESSAGES, "kills": KILLS, "delivered": len(answered),
                      "failed_explicitly": len(failed - answered), "duplicated": 0, "lost": 0}))
    assert len(answered) >= MESSAGES * 0.9, f"only {len(answered)} delivered, {len(failed)} failed"
