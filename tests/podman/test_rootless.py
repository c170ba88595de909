"""Rootless Podman, as on a person's computer: the host runs as a normal user and so does Podman.

Everything before this ran rootful, as root. Here ``adduser`` makes a normal user, the host runs as that user from
this checkout (``tests/podman/rootless_host.py``) and finds or starts the user's own Podman service, and a message is
answered by a real rootless container: through the model gateway's socket mounted into it, with the session folder
mapped so that what the runner writes there belongs to the user on the host. After an idle stop the next message is
answered by the standby container (``podman init``, rootless too). A user without subordinate ids is told in plain
words what to run, by the setup wizard's container step and by ``nanoclaw doctor``, before anything is built.

The agent image is not built again as the user (minutes): the image the rootful tests built is copied into the
user's own storage with ``podman save | podman load`` (about 45 s the first time, nothing later: the user and its
storage stay on the machine). The app's own path that builds a missing image (``AgentImages``) is the same as rootful.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.fakes.anthropic_server import FakeAnthropic, Text, ToolUse, last_user_content
from tests.podman.conftest import BASE_IMAGE, REAL_KEY, wait_for
from tests.podman.podman_host import FAST
from tests.podman.rootless_user import REPO, UserAccount, make_user

USER = "nc-rootless"
NO_SUBIDS_USER = "nc-nosubids"
PING = re.compile(r"ping-(\w+)")
WRITE = "echo written in the container as uid $(id -u) > /workspace/from-runner.txt; cat /workspace/from-runner.txt"


@pytest.fixture(scope="module")
def rootless_user(agent_image: str) -> UserAccount:
    """The test user, with the agent image (and its base, whose id is part of the image tag) in its own storage."""
    user = make_user(USER)
    if user.run(["podman", "image", "exists", agent_image], check=False).returncode != 0:
        save = subprocess.Popen(["podman", "save", "-q", "-m", BASE_IMAGE, agent_image], stdout=subprocess.PIPE)
        try:
            user.run(["podman", "load", "-q"], stdin=save.stdout)
        finally:
            assert save.stdout is not None
            save.stdout.close()
            save.wait()
    return user


def respond(request: dict[str, Any]) -> Text | ToolUse:
    """Ping 1: have the runner write a file in its session folder, then answer with what it wrote. Others: pong."""
    found = PING.findall(json.dumps(request.get("messages")))
    number = found[-1] if found else "?"
    results = [block for block in last_user_content(request) if block.get("type") == "tool_result"]
    if number == "1" and not results:
        return ToolUse("bash", {"command": WRITE})
    said = f" ({json.dumps(results[0].get('content'))[:200]})" if results else ""
    return Text(f'<message to="owner-dm">pong {number}{said}</message>')


class UserHost:
    """The host process running as the user; messages in through ``feed.jsonl``, answers out in ``out.jsonl``."""

    def __init__(self, user: UserAccount, workdir: Path, proc: asyncio.subprocess.Process) -> None:
        self.user = user
        self.workdir = workdir
        self.proc = proc
        self.home = workdir / "home"
        self._sent = 0

    def send(self, text: str) -> None:
        self._sent += 1
        message = {"channel_type": "test", "platform_id": "owner", "message_id": f"m{self._sent}",
                   "sender_id": "owner", "sender_name": "Owner", "text": text}
        with (self.workdir / "feed.jsonl").open("a", encoding="utf-8") as feed:
            feed.write(json.dumps(message) + "\n")

    def answers(self) -> list[str]:
        out = self.workdir / "out.jsonl"
        lines = out.read_text(encoding="utf-8").splitlines() if out.exists() else []
        return [json.loads(line)["text"] for line in lines if line.endswith("}")]

    def log(self) -> str:
        return "".join(path.read_text(encoding="utf-8") for path in sorted((self.home / "logs").glob("*.log")))

    def containers(self) -> dict[str, str]:
        """Name → state of the user's containers (``initialized``: a standby, created but never started)."""
        return {str(c["Names"][0]): str(c["State"]).lower()  # type: ignore[index]
                for c in self.user.podman_json("ps", "-a")}

    def problem(self) -> str:
        """The host's own account of what went wrong, for failure messages."""
        err = self.workdir / "host.err"
        return f"\n--- host stderr ---\n{err.read_text()[-3000:] if err.exists() else ''}\n--- log ---\n" \
               f"{self.log()[-4000:]}"


async def start_host(user: UserAccount, workdir: Path, mode: str, overrides: dict[str, Any]
                     ) -> asyncio.subprocess.Process:
    env = {**user.env, "NANOCLAW_HOME": str(workdir / "home"), "NANOCLAW_CONFIG_DIR": str(workdir / "config")}
    with (workdir / "host.err").open("wb") as err:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.podman.rootless_host", mode, str(workdir), json.dumps(overrides),
            user=user.uid, group=user.gid, extra_groups=[], env=env, cwd=REPO,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=err,
        )


@pytest.fixture
async def user_host(rootless_user: UserAccount) -> AsyncIterator[tuple[UserHost, FakeAnthropic]]:
    fake = FakeAnthropic(responder=respond)
    await fake.start()
    workdir = rootless_user.folder("nanoclaw-test")
    settings = {"anthropic_base_url": fake.url, **FAST, "idle_stop_seconds": 0.5}
    proc = await start_host(rootless_user, workdir, "serve", settings)
    host = UserHost(rootless_user, workdir, proc)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 90)
        assert line == b"ready\n", f"the host did not start as {rootless_user.name}{host.problem()}"
        yield host, fake
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 60)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        await fake.stop()


async def test_a_normal_users_rootless_podman_answers_through_the_gateway_and_from_a_standby(
    user_host: tuple[UserHost, FakeAnthropic],
) -> None:
    host, fake = user_host
    user = host.user

    host.send("ping-1")
    await wait_for(lambda: any(a.startswith("pong 1") for a in host.answers()), what="the answer to ping 1")

    assert re.search(r"Podman \S+ connected at \S+ \(rootless\)", host.log()), host.problem()
    # The runner in the container reached the model only through the gateway's socket (the key is the host's).
    assert fake.requests, "the model was never called"
    assert {h.get("x-api-key") for h in fake.headers} == {REAL_KEY}
    # What it wrote in its session folder, as root in the container, is the user's own file on the host.
    [written] = (host.home / "sessions").glob("*/*/from-runner.txt")
    assert written.stat().st_uid == user.uid
    assert written.stat().st_gid == user.gid
    assert written.read_text().strip() == "written in the container as uid 0"
    assert "uid 0" in host.answers()[0]

    await wait_for(lambda: "initialized" in host.containers().values(), what="the standby container")
    [standby] = [name for name, state in host.containers().items() if state == "initialized"]

    host.send("ping-2")
    await wait_for(lambda: "pong 2" in host.answers(), what="the answer to ping 2")

    assert re.search(rf"container {re.escape(standby)} started for session \S+ from standby", host.log()), \
        host.problem()
    assert host.proc.returncode is None, host.problem()


async def test_a_user_without_subordinate_ids_is_told_what_to_run_by_the_wizard_and_the_doctor() -> None:
    """Rootless Podman then maps only the user's own id: it answers, then fails every image with ``lchown``."""
    user = make_user(NO_SUBIDS_USER, subordinate_ids=False)
    user.run(["podman", "system", "migrate"])  # as after editing /etc/subuid: the engine reads it again
    workdir = user.folder("nanoclaw-test")
    proc = await start_host(user, workdir, "engine-check", {})
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    lines = out.decode().splitlines()
    assert proc.returncode == 0, (workdir / "host.err").read_text()[-3000:]
    assert lines, (workdir / "host.err").read_text()[-3000:]
    report = json.loads(lines[-1])

    assert report["ok"] is False
    assert report["runtime"] == "podman"
    assert "no subordinate ids in /etc/subuid" in report["problem"]
    command = re.search(r"`(sudo usermod --add-subuids (\d+)-(\d+) --add-subgids \2-\3 (\S+))`", report["fix"])
    assert command is not None, report["fix"]
    assert command.group(4) == NO_SUBIDS_USER
    first, last = int(command.group(2)), int(command.group(3))
    for line in Path("/etc/subuid").read_text().splitlines():  # the range offered is nobody else's
        start, count = (int(part) for part in line.split(":")[1:3])
        assert last < start or first >= start + count, line
    assert "podman system migrate" in report["fix"]
    # After the migrate Podman made its user namespace afresh, so the service it ran re-ran itself as a child:
    # stopping the host stopped that child too (nothing is left serving this home's socket forever).
    assert _services_on(workdir) == []

    doctor = user.run([sys.executable, "-m", "nanoclaw_app", "doctor", "--json"], check=False,
                      env={**user.env, "NANOCLAW_HOME": str(workdir / "home"),
                           "NANOCLAW_CONFIG_DIR": str(workdir / "config")})
    [podman] = [check for check in json.loads(doctor.stdout) if check["name"] == "podman"]
    assert podman["ok"] is False, doctor.stdout
    assert podman["detail"].endswith(report["problem"])
    assert podman["fix"] == report["fix"]


def _services_on(workdir: Path) -> list[str]:
    """Podman services still running for the socket of the host in ``workdir``."""
    socket = str(workdir / "home" / "run" / "podman.sock")
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if "system service" in command and socket in command:
            found.append(f"{process.pid}: {command}")
    return found
