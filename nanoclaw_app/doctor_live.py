"""``nanoclaw doctor --live``: the session store's cross-mount invariants, checked in one real container.

A throwaway session folder is made by :class:`SessionStore` under the data folder (where real sessions live, so the
same disk and, on a Podman machine, the same shared folder), and one container is started from the agent image with
the mounts, user, limits and flags of a session's (:meth:`PodmanRuntime.session_config`), running
``agent_runner.live_check`` instead of the runner. The host writes rows to ``inbound.db`` one at a time through the
store; the container notices each as the runner does (file events, else its poll) and answers with an ``outbound.db``
row, which the host notices as delivery does (:class:`OutboundWatcher`, else a poll). The time from the start of a
write to the other side having the row is the visibility latency of that direction; both sides stamp with the same
wall clock (shared with the container on Linux; a Podman machine's VM clock may be off by a few ms). The heartbeat
must move meanwhile. The container and the folder are removed whatever happens, Ctrl+C included; the container also
ends by itself after a deadline, in case this process is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agent_runner.live_check import KIND
from nanoclaw_app.core.watcher import OutboundWatcher
from nanoclaw_app.doctor import Check
from nanoclaw_app.errors import ConfigError, NanoClawError
from nanoclaw_app.paths import Paths
from nanoclaw_app.runtime.base import SessionSpec
from nanoclaw_app.runtime.image import AgentImages
from nanoclaw_app.runtime.podman_api import ContainerConfig, PodmanApi
from nanoclaw_app.runtime.podman_endpoint import PodmanUnavailable
from nanoclaw_app.runtime.podman_runtime import PodmanRuntime
from nanoclaw_app.runtime.podman_socket import PodmanService
from nanoclaw_app.sessions.mounted import MountedDir
from nanoclaw_app.sessions.store import HEARTBEAT, NewInbound, SessionStore
from nanoclaw_app.settings import Settings, load_settings
from nanoclaw_app.terminal_command import terminal_command
from nanoclaw_app.timeutil import now_iso

log = logging.getLogger(__name__)

TARGET_P99_MS = 50.0
"""99 of 100 rows must be seen by the other side within this, in each direction (the original allows about 1 s)."""
ROWS = 100
READY_TIMEOUT_S = 60.0
"""Container start, the runner's imports and its file-event probe."""
ROW_TIMEOUT_S = 5.0
"""A row not answered by then counts as lost; three lost in a row end the check."""
MAX_LOST_IN_A_ROW = 3
HOST_POLL_S = 1.0
"""The host's fallback read while it waits, as delivery polls when no file event comes."""
CONTAINER_POLL_S = 2.0
"""The runner's own fallback poll (``poll_seconds``)."""
PROBE_COMMAND = ("python", "-P", "-s", "-m", "agent_runner.live_check")
AGENT_ID = "doctor"


class _Failed(Exception):
    """The check could not run or its rows did not cross; ``detail`` and ``fix`` are for the user."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix


@dataclass(frozen=True, slots=True)
class Latency:
    """Visibility latency of one direction, in ms (None when no row crossed)."""

    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    @classmethod
    def of(cls, samples_ns: Sequence[int]) -> Latency:
        """Nearest-rank percentiles: p99 of 100 samples is the 99th smallest."""
        if not samples_ns:
            return cls(None, None, None)
        ordered = sorted(max(0, s) / 1e6 for s in samples_ns)

        def rank(q: float) -> float:
            return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 3)

        return cls(rank(0.5), rank(0.99), round(ordered[-1], 3))

    def words(self) -> str:
        """The three numbers as a sentence."""
        if self.p99_ms is None:
            return "no row crossed"
        return (f"half within {self.p50_ms:.1f} ms, 99 in 100 within {self.p99_ms:.1f} ms, "
                f"the slowest after {self.max_ms:.1f} ms")


@dataclass(frozen=True, slots=True)
class LiveReport:
    """What ``doctor --live`` measured (its JSON ``data``)."""

    rows: int
    answered: int
    inbound: Latency
    """Host writes ``inbound.db`` until the container's reader has the row."""
    outbound: Latency
    """Container writes ``outbound.db`` until the host's reader has the row."""
    heartbeat_moved: bool
    heartbeat_age_ms: float | None
    container_watch: str
    container_events: bool
    host_watch: str
    host_events: bool
    container_start_s: float
    host_write: Latency = Latency(None, None, None)
    """How long the host's own ``inbound.db`` writes took (part of ``inbound``): a slow disk shows here."""
    target_p99_ms: float = TARGET_P99_MS

    def slow(self) -> list[str]:
        """Each direction whose p99 misses the target, in words."""
        found = []
        for name, latency in (("host → container", self.inbound), ("container → host", self.outbound)):
            if latency.p99_ms is not None and latency.p99_ms > self.target_p99_ms:
                found.append(f"{name} p99 {latency.p99_ms:.1f} ms is above the {self.target_p99_ms:.0f} ms target")
        return found


async def live_check(paths: Paths, *, rows: int = ROWS) -> Check:
    """Run the live check; never raises (but Ctrl+C still stops it, after the clean-up)."""
    try:
        settings = load_settings(paths)
    except ConfigError as err:
        return Check("live", False, f"the settings cannot be read: {err}", f"edit or delete {paths.settings_file}")
    if settings.runtime != "podman":
        return Check("live", True, "agents run without containers here (runtime: local): no folder is shared with a "
                     "container, so there is nothing to check", required=False)
    try:
        paths.ensure()
        work = Path(tempfile.mkdtemp(prefix="doctor-live-", dir=paths.home))
    except OSError as err:
        return Check("live", False, f"cannot make a folder in {paths.home}: {err}",
                     "set NANOCLAW_HOME to a writable folder")
    service = PodmanService(configured_url=settings.podman_url, run_dir=paths.run, wait_for_machine=True)
    runtime = PodmanRuntime(settings, service=service)
    try:
        report = await _measure(settings, runtime, work, rows)
    except PodmanUnavailable as err:
        return Check("live", False, err.problem, err.fix)
    except _Failed as err:
        return Check("live", False, err.detail, err.fix)
    except NanoClawError as err:
        return Check("live", False, str(err), "run `podman info`; if it answers, run this check again")
    except Exception as err:  # the doctor reports, never crashes
        log.exception("the live check broke")
        return Check("live", False, f"the check itself broke: {err}", "run it again; if it breaks again, report it "
                     "with this line")
    finally:
        with contextlib.suppress(Exception):
            await runtime.close()
        _remove(paths.home, work.name)
    return _verdict(report, paths)


async def _measure(settings: Settings, runtime: PodmanRuntime, work: Path, rows: int) -> LiveReport:
    api = await runtime.connect()
    images = AgentImages(api, base_image=settings.agent_base_image, ca_certificates=settings.agent_ca_certificates)
    image = await images.present_for((), ())
    if image is None:
        raise _Failed("the agent image is not built yet, so no container can start",
                      f"build it: `{terminal_command('image', 'build')}` (several minutes the first time), or open "
                      "the app: its setup builds it")
    store = SessionStore(work / "sessions")
    await store.start()
    session_id = f"live-{secrets.token_hex(4)}"
    answers = _Answers(store, await store.create(AGENT_ID, session_id))
    watcher = OutboundWatcher(store.root, lambda _session: answers.fetch())
    try:
        await watcher.start()
        host_events = True
        try:
            async with asyncio.timeout(5.0):
                await watcher.wait_ready()
        except TimeoutError:
            host_events = False
        spec = SessionSpec(session_id=session_id, agent_group_id=AGENT_ID, session_dir=answers.folder,
                           agent_dir=work / "agent", log_path=work / "container.log")
        deadline = READY_TIMEOUT_S + (rows + 1) * ROW_TIMEOUT_S + 30
        command = [*PROBE_COMMAND, "--deadline", str(deadline), "--poll", str(CONTAINER_POLL_S)]
        config = runtime.session_config(spec, f"nanoclaw-{runtime.install}-{session_id}", image, command)
        started = time.monotonic()
        async with _container(api, config):
            ready = await answers.ready(api, config.name, spec.log_path)
            start_s = time.monotonic() - started
            beat_before = _heartbeat_ns(answers.folder)
            inbound, outbound, writes, answered = await _exchange(store, answers, rows)
            beat_after = _heartbeat_ns(answers.folder)
            await answers.stop(rows)
    finally:
        await watcher.stop()
        await store.close()
    moved = beat_before is not None and beat_after is not None and beat_after > beat_before
    age = None if beat_after is None else round(max(0, time.time_ns() - beat_after) / 1e6, 1)
    return LiveReport(
        rows=rows, answered=answered, inbound=Latency.of(inbound), outbound=Latency.of(outbound),
        heartbeat_moved=moved, heartbeat_age_ms=age, container_watch=str(ready.get("backend", "?")),
        container_events=bool(ready.get("events")), host_watch=watcher.backend, host_events=host_events,
        container_start_s=round(start_s, 2), host_write=Latency.of(writes),
    )


async def _exchange(
    store: SessionStore, answers: _Answers, rows: int
) -> tuple[list[int], list[int], list[int], int]:
    """Send the rows one at a time; each waits for its answer (or its timeout) before the next goes.

    Returns the inbound and outbound latencies, the host's write durations (all in ns) and how many rows came back.
    """
    lost = 0
    writes = []
    for n in range(rows):
        answers.sent_ns[n] = time.time_ns()
        began = time.perf_counter_ns()
        await store.write_inbound(answers.folder, _row(n, {"n": n}))
        writes.append(time.perf_counter_ns() - began)
        if await answers.wait(n, ROW_TIMEOUT_S):
            lost = 0
            continue
        lost += 1
        if lost >= MAX_LOST_IN_A_ROW:
            break
    await answers.fetch()
    inbound, outbound = [], []
    for n, (content, host_seen_ns) in answers.rows.items():
        if n in answers.sent_ns:
            inbound.append(int(content["seen_ns"]) - answers.sent_ns[n])
            outbound.append(host_seen_ns - int(content["written_ns"]))
    return inbound, outbound, writes, len(inbound)


def _row(n: int, content: dict[str, Any]) -> NewInbound:
    return NewInbound(id=f"live-{n}", kind=KIND, content=json.dumps(content), timestamp=now_iso())


class _Answers:
    """The container's answers as the host reads them from ``outbound.db``, stamped when they were read."""

    def __init__(self, store: SessionStore, folder: Path) -> None:
        self.store = store
        self.folder = folder
        self.rows: dict[int, tuple[dict[str, Any], int]] = {}
        self.sent_ns: dict[int, int] = {}
        self.hello: dict[str, Any] | None = None
        self._seq = 0
        self._lock = asyncio.Lock()
        self._arrived = asyncio.Event()

    async def fetch(self) -> None:
        """Read the answers not read yet (called by the watcher, and as the fallback poll)."""
        async with self._lock:
            seq = self._seq
            found = await self.store.read_outbound(self.folder, lambda conn: conn.execute(
                "SELECT seq, content FROM messages_out WHERE kind = ? AND seq > ? ORDER BY seq", (KIND, seq),
            ).fetchall())
            seen_ns = time.time_ns()
            for row in found:
                self._seq = max(self._seq, int(row[0]))
                try:
                    content = json.loads(row[1])
                except ValueError:
                    continue
                if not isinstance(content, dict):
                    continue
                if content.get("ready"):
                    self.hello = content
                elif isinstance(content.get("n"), int) and all(
                        isinstance(content.get(k), int) for k in ("seen_ns", "written_ns")):
                    self.rows.setdefault(content["n"], (content, seen_ns))
            if found:
                self._arrived.set()

    async def wait(self, n: int | None, within: float) -> bool:
        """Whether answer ``n`` (None: the ready row) arrived within ``within`` seconds."""
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        while (self.hello is None) if n is None else (n not in self.rows):
            left = end - loop.time()
            if left <= 0:
                return False
            self._arrived.clear()
            try:
                async with asyncio.timeout(min(HOST_POLL_S, left)):
                    await self._arrived.wait()
            except TimeoutError:
                await self.fetch()
        return True

    async def ready(self, api: PodmanApi, name: str, log_path: Path) -> dict[str, Any]:
        """The container's first row (its watch set up); a container that ended before it is explained."""
        loop = asyncio.get_running_loop()
        end = loop.time() + READY_TIMEOUT_S
        while not await self.wait(None, 1.0):
            info = await api.inspect(name)
            if info is None or not (info.get("State") or {}).get("Running"):
                raise _Failed(f"the check's container stopped before it was ready{_log_tail(log_path)}",
                              "rebuild the agent image (`" + terminal_command("image", "build") + "`) and run this "
                              "check again; if it still stops, run `podman info`")
            if loop.time() > end:
                raise _Failed(f"the check's container did not answer within {READY_TIMEOUT_S:.0f} s",
                              "the session folder may not be shared with containers: keep NanoClaw's data folder on "
                              "a local disk (on macOS and Windows, inside your user folder) and run `podman info`")
        return self.hello or {}

    async def stop(self, n: int) -> None:
        """Tell the container to end (it also ends by its deadline, and is removed in any case)."""
        await self.store.write_inbound(self.folder, _row(n, {"n": n, "stop": True}))
        await self.wait(n, ROW_TIMEOUT_S)


@contextlib.asynccontextmanager
async def _container(api: PodmanApi, config: ContainerConfig) -> AsyncIterator[None]:
    """Start the container; on leaving, remove it, even when cancelled (Ctrl+C) while it was still being made."""
    start = asyncio.ensure_future(api.run(config))
    try:
        await asyncio.shield(start)
        yield
    finally:
        if not start.done():
            with contextlib.suppress(Exception):
                await start  # removing it before the engine finished making it would leave it behind
        try:
            await api.remove(config.name)
        except NanoClawError as err:
            log.warning("could not remove the live check's container %s: %s", config.name, err)


def _heartbeat_ns(folder: Path) -> int | None:
    """The heartbeat's mtime, looked at without following a link (the container may have swapped it)."""
    with MountedDir.open(folder) as where:
        info = where.lstat(HEARTBEAT)
    return None if info is None else info.st_mtime_ns


def _log_tail(log_path: Path, lines: int = 5) -> str:
    """The container's last lines (a host-only file), for a container that stopped early."""
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    said = [line.split(" ", 3)[-1] for line in text if line.strip()]
    return ("; it said: " + " | ".join(said)) if said else ""


def _remove(home: Path, name: str) -> None:
    """Delete the check's folder without following any link the container left in it."""
    try:
        with MountedDir.open(home) as where:
            where.remove_tree(name)
    except (OSError, NanoClawError) as err:
        log.warning("could not remove %s: %s", home / name, err)


def _verdict(report: LiveReport, paths: Paths) -> Check:
    data = asdict(report)
    lines = [
        f"host → container (inbound.db): {report.answered} of {report.rows} rows seen; {report.inbound.words()}",
        f"container → host (outbound.db): {report.answered} of {report.rows} rows seen; {report.outbound.words()}",
        f"writing alone (included in the host → container times): {report.host_write.words()}",
        "heartbeat: " + (f"moved (touched {report.heartbeat_age_ms:.0f} ms ago)" if report.heartbeat_moved
                         else "did not move"),
        f"file events: {report.container_watch} in the container, {report.host_watch} on this computer; "
        f"the container started in {report.container_start_s:.1f} s",
    ]
    if report.answered < report.rows:
        data["verdict"] = "rows lost"
        return Check("live", False, "\n".join([f"rows lost: {report.rows - report.answered} of {report.rows} rows "
                                               "never made it across the session folder", *lines]),
                     "the session folder is not shared with containers as it should be: keep NanoClaw's data folder "
                     f"({paths.home}) on a local disk and run `podman info`", data=data)
    if not report.heartbeat_moved:
        data["verdict"] = "heartbeat still"
        return Check("live", False, "\n".join(["the container's heartbeat never reached this computer", *lines]),
                     f"the session folder is not shared both ways: keep NanoClaw's data folder ({paths.home}) on a "
                     "local disk and run `podman info`", data=data)
    slow = report.slow()
    if slow:
        data["verdict"] = "slower than expected: " + "; ".join(slow)
        return Check("live", False, "\n".join([data["verdict"], *lines]), _slow_fix(report, paths), required=False,
                     data=data)
    data["verdict"] = "within target"
    return Check("live", True, "\n".join([f"within target: messages cross the session folder in both directions, "
                                          f"99 in 100 within {report.target_p99_ms:.0f} ms", *lines]), data=data)


def _slow_fix(report: LiveReport, paths: Paths) -> str:
    """Why rows are slow, as far as the watch backends tell, and what to do about it."""
    if report.container_watch != "inotify" or not report.container_events:
        return ("the container gets no file events from its session folder, so the agent notices new messages only "
                f"by polling (every {CONTAINER_POLL_S:.0f} s): on Linux raise fs.inotify.max_user_instances and "
                "fs.inotify.max_user_watches (sysctl); with a Podman machine (macOS, Windows) this is expected")
    if report.host_watch != "inotify" or not report.host_events:
        return ("this computer gives NanoClaw no file events for its data folder, so replies are noticed by polling: "
                "on Linux raise fs.inotify.max_user_instances and fs.inotify.max_user_watches (sysctl)")
    writing = report.host_write.p99_ms
    alone = f"writing alone takes up to {writing:.0f} ms here, so " if writing is not None else ""
    return (f"{alone}the disk under NanoClaw's data folder ({paths.home}) or the computer is busy: close heavy "
            "programs and keep the data folder on a local disk (not a network share or a cloud-synced folder)")
