"""Finding Podman: a real service started and stopped, clear messages when Podman is missing or stopped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from nanoclaw_app.engine.relay import unix_socket
from nanoclaw_app.errors import ConfigError
from nanoclaw_app.runtime import podman_socket
from nanoclaw_app.runtime.podman_endpoint import MachineStarting, PodmanEndpoint, PodmanUnavailable, ping
from nanoclaw_app.runtime.podman_probe import probe
from nanoclaw_app.runtime.podman_socket import PodmanService
from tests.waiting import until

_real_standard_socket_path = podman_socket.standard_socket_path


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """Unix socket paths must stay short; tmp_path can be long. Fails the test if a service on it outlives it."""
    folder = Path(tempfile.mkdtemp(prefix="nc-"))
    try:
        yield folder
        leaked = _services_under(folder)
        for pid in leaked:
            os.kill(pid, signal.SIGKILL)
        assert leaked == [], f"Podman services left running: {leaked}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _services_under(folder: Path) -> list[int]:
    """Pids of live `podman system service` processes listening below ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"service" in cmdline and any(arg.startswith(f"unix://{folder}/".encode()) for arg in cmdline):
            found.append(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def _no_ambient_podman(monkeypatch: pytest.MonkeyPatch, short_dir: Path) -> None:
    """Tests decide which sockets exist: no CONTAINER_HOST, and a standard socket that is never there."""
    monkeypatch.delenv("CONTAINER_HOST", raising=False)
    monkeypatch.setattr(podman_socket, "standard_socket_path", lambda uid=None: short_dir / "no-standard.sock")


@pytest.fixture
async def fake_engine(short_dir: Path) -> AsyncIterator[Path]:
    """A unix-socket HTTP server answering like Podman's REST API (ping and info)."""

    async def ping_handler(request: web.Request) -> web.Response:
        return web.Response(text="OK", headers={"Libpod-Api-Version": "5.2.0"})

    async def info_handler(request: web.Request) -> web.Response:
        return web.json_response({"host": {"security": {"rootless": True}}, "version": {"Version": "5.2.0"}})

    app = web.Application()
    app.router.add_get("/_ping", ping_handler)
    app.router.add_get("/v4.0.0/libpod/info", info_handler)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = short_dir / "engine.sock"
    await web.UnixSite(runner, str(sock)).start()
    try:
        yield sock
    finally:
        await runner.cleanup()


def _fake_podman(folder: Path, body: str) -> Path:
    """A `podman` executable that records its arguments in ``calls`` and then runs ``body`` (Python)."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "podman"
    exe.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib, sys\n"
        "here = pathlib.Path(__file__).parent\n"
        "args = sys.argv[1:]\n"
        "with open(here / 'calls', 'a') as f:\n"
        "    f.write(' '.join(args) + '\\n')\n"
        + body
    )
    exe.chmod(0o755)
    return exe


def _calls(exe: Path) -> list[str]:
    path = exe.parent / "calls"
    return path.read_text().splitlines() if path.exists() else []


def _machine_podman(folder: Path, sock: Path, *, running: bool = False, start_fails: bool = False,
                    pipe: bool = False, hold: bool = False) -> Path:
    """A fake macOS/Windows `podman` whose default machine starts on `podman machine start`.

    ``pipe``: the machine offers a Windows named pipe (here: the path of ``sock``) and no unix socket. ``hold``: the
    start prints its first line, then waits until a file named ``go`` appears next to the executable.
    """
    connection = ('{"PodmanSocket": None, "PodmanPipe": {"Path": %r}}' if pipe else
                  '{"PodmanSocket": {"Path": %r}, "PodmanPipe": None}') % str(sock)
    return _fake_podman(folder, f"""
import time
state = here / 'running'
if {running!r}:
    state.write_text('1')
if args[:2] == ['machine', 'inspect']:
    print(json.dumps([{{
        "ConfigDir": {{"Path": "/Users/me/.config/containers/podman/machine/applehv"}},
        "ConnectionInfo": {connection},
        "Name": "podman-machine-default",
        "Rootful": False,
        "State": "running" if state.exists() else "stopped",
    }}], indent=4))
elif args[:2] == ['machine', 'start']:
    print('Starting machine "podman-machine-default"', flush=True)
    if {hold!r}:
        while not (here / 'go').exists():
            time.sleep(0.02)
    if {start_fails!r}:
        print('Error: vfkit exited unexpectedly with exit code 1', file=sys.stderr)
        sys.exit(125)
    state.write_text('1')
    print('Machine "podman-machine-default" started successfully')
else:
    sys.exit(125)
""")


# --- a real Podman service --------------------------------------------------------------------------------------


@pytest.mark.podman
async def test_starts_its_own_service_when_no_socket_answers_and_stops_it_on_close(short_dir: Path) -> None:
    service = PodmanService(configured_url="", run_dir=short_dir / "run")
    endpoint = await service.ensure()
    sock = short_dir / "run" / "podman.sock"
    try:
        assert endpoint.url == f"unix://{sock}"
        assert endpoint.started_service is True
        assert endpoint.rootless is (os.geteuid() != 0)
        assert endpoint.machine is None
        assert (await ping(endpoint.url)).ok
        pid = json.loads((short_dir / "run" / "podman-service.pid").read_text())["service"]
        assert _running(pid)
        assert await service.ensure() == endpoint
    finally:
        await service.close()
    assert not _running(pid)
    assert not sock.exists()
    assert not (await ping(endpoint.url)).ok
    await service.close()


@pytest.mark.podman
async def test_service_that_died_is_started_again(short_dir: Path) -> None:
    service = PodmanService(configured_url="", run_dir=short_dir)
    try:
        first = await service.ensure()
        pid = json.loads((short_dir / "podman-service.pid").read_text())["service"]
        os.kill(pid, signal.SIGKILL)
        second = await service.ensure()
        assert second.url == first.url
        assert (await ping(second.url)).ok
        assert json.loads((short_dir / "podman-service.pid").read_text())["service"] != pid
    finally:
        await service.close()


@pytest.mark.podman
async def test_service_left_by_a_crashed_host_is_stopped_and_replaced(short_dir: Path) -> None:
    sock = short_dir / "podman.sock"
    leftover = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        crashed_host = subprocess.Popen(["true"])
        crashed_host.wait()
        (short_dir / "podman-service.pid").write_text(
            json.dumps({"service": leftover.pid, "owner": crashed_host.pid}))
        service = PodmanService(configured_url="", run_dir=short_dir)
        try:
            endpoint = await service.ensure()
            assert leftover.wait(timeout=10) is not None
            assert endpoint.started_service is True
            assert (await ping(endpoint.url)).ok
        finally:
            await service.close()
    finally:
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait()


@pytest.mark.podman
async def test_service_of_a_running_host_is_shared_not_stopped(short_dir: Path) -> None:
    """`nanoclaw doctor` while `nanoclaw serve` runs: the doctor uses the host's service and leaves it running."""
    host = PodmanService(configured_url="", run_dir=short_dir)
    host_endpoint = await host.ensure()
    try:
        doctor = PodmanService(configured_url="", run_dir=short_dir)
        try:
            endpoint = await doctor.ensure()
            assert endpoint.url == host_endpoint.url
            assert endpoint.started_service is False
        finally:
            await doctor.close()
        assert (await ping(host_endpoint.url)).ok
    finally:
        await host.close()


@pytest.mark.podman
async def test_probe_reports_version_and_rootful_and_leaves_nothing_running(short_dir: Path) -> None:
    result = await probe(configured_url="", run_dir=short_dir)
    assert result.installed is True
    assert result.client_version.startswith("podman version ")
    assert result.endpoint is not None
    assert result.endpoint.rootless is (os.geteuid() != 0)
    assert result.engine_version
    assert result.problem == ""
    assert not (short_dir / "podman.sock").exists()
    assert not (short_dir / "podman-service.pid").exists()


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# --- configured endpoints -----------------------------------------------------------------------------------------


async def test_configured_url_that_answers_is_used_as_is(fake_engine: Path, short_dir: Path) -> None:
    service = PodmanService(configured_url=f"unix://{fake_engine}", run_dir=short_dir / "run",
                            podman_exe="/nonexistent/podman")
    endpoint = await service.ensure()
    assert endpoint == PodmanEndpoint(url=f"unix://{fake_engine}", rootless=True,
                                                    started_service=False)
    await service.close()


async def test_configured_url_that_does_not_answer_says_what_to_do(short_dir: Path) -> None:
    service = PodmanService(configured_url=f"unix://{short_dir}/missing.sock", run_dir=short_dir)
    with pytest.raises(PodmanUnavailable) as info:
        await service.ensure()
    message = str(info.value)
    assert f"Podman at unix://{short_dir}/missing.sock (the configured podman_url) does not answer" in message
    assert "does not exist" in message
    assert "clear the podman_url setting" in message
    assert isinstance(info.value, ConfigError)
    assert not (short_dir / "podman.sock").exists()


async def test_configured_socket_that_refuses_connections_is_reported(short_dir: Path) -> None:
    import socket

    dead = short_dir / "dead.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(dead))
    listener.close()  # the file stays, nobody listens: like a socket left by a stopped engine
    with pytest.raises(PodmanUnavailable, match="does not answer: no answer at"):
        await PodmanService(configured_url=f"unix://{dead}", run_dir=short_dir).ensure()


async def test_unusable_url_scheme_is_explained(short_dir: Path) -> None:
    with pytest.raises(PodmanUnavailable, match=r"unix:///path/to/podman.sock or tcp://host:port"):
        await PodmanService(configured_url="ssh://core@127.0.0.1:2222/run/podman.sock", run_dir=short_dir).ensure()


async def test_container_host_env_is_used_and_is_authoritative(fake_engine: Path, short_dir: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAINER_HOST", f"unix://{fake_engine}")
    endpoint = await PodmanService(configured_url="", run_dir=short_dir).ensure()
    assert endpoint.url == f"unix://{fake_engine}"
    monkeypatch.setenv("CONTAINER_HOST", f"unix://{short_dir}/gone.sock")
    with pytest.raises(PodmanUnavailable, match="unset CONTAINER_HOST"):
        await PodmanService(configured_url="", run_dir=short_dir).ensure()


async def test_standard_socket_is_preferred_to_starting_a_service(fake_engine: Path, short_dir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(podman_socket, "standard_socket_path", lambda uid=None: fake_engine)
    exe = _fake_podman(short_dir / "bin", "sys.exit(125)\n")
    endpoint = await PodmanService(configured_url="", run_dir=short_dir / "run", podman_exe=str(exe),
                                   platform="linux").ensure()
    assert endpoint.url == f"unix://{fake_engine}"
    assert endpoint.started_service is False
    assert _calls(exe) == []


def test_standard_socket_is_per_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert _real_standard_socket_path(0) == Path("/run/podman/podman.sock")
    assert _real_standard_socket_path(1000) == Path("/run/user/1000/podman/podman.sock")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert _real_standard_socket_path(1001) == Path("/run/user/1001/podman/podman.sock")


# --- Podman missing or broken -------------------------------------------------------------------------------------


async def test_podman_exe_pointing_nowhere_gives_the_install_message(short_dir: Path) -> None:
    service = PodmanService(configured_url="", run_dir=short_dir, podman_exe=str(short_dir / "nope" / "podman"),
                            platform="linux")
    with pytest.raises(PodmanUnavailable) as info:
        await service.ensure()
    assert "Podman is not installed" in str(info.value)
    assert "sudo apt install podman" in info.value.fix


@pytest.mark.parametrize(("platform", "hint"), [("linux", "sudo dnf install podman"),
                                                ("darwin", "brew install podman"),
                                                ("win32", "winget install RedHat.Podman")])
async def test_no_podman_on_path_gives_the_install_message_for_this_os(
        short_dir: Path, monkeypatch: pytest.MonkeyPatch, platform: str, hint: str) -> None:
    empty = short_dir / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(PodmanUnavailable) as info:
        await PodmanService(configured_url="", run_dir=short_dir, platform=platform).ensure()
    assert "no `podman` on PATH" in info.value.problem
    assert hint in info.value.fix
    assert info.value.action == ("" if platform == "linux" else "install_podman")


async def test_service_that_cannot_start_reports_its_own_error(short_dir: Path) -> None:
    exe = _fake_podman(short_dir / "bin", (
        "if args[:2] == ['system', 'service']:\n"
        "    print('Error: cannot listen: permission denied by policy', file=sys.stderr)\n"
        "    sys.exit(125)\n"
    ))
    service = PodmanService(configured_url="", run_dir=short_dir / "run", podman_exe=str(exe), platform="linux")
    with pytest.raises(PodmanUnavailable) as info:
        await service.ensure()
    assert "its service did not come up: it exited with code 125" in info.value.problem
    assert "permission denied by policy" in info.value.problem
    assert "podman info" in info.value.fix
    assert _calls(exe) == [f"system service --time=0 unix://{short_dir}/run/podman.sock"]
    assert not (short_dir / "run" / "podman-service.pid").exists()
    await service.close()


# --- macOS / Windows: the Podman machine --------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["darwin", "win32"])
async def test_stopped_machine_is_started_in_the_background_and_its_socket_used(fake_engine: Path, short_dir: Path,
                                                                               platform: str) -> None:
    """The app's start does not wait for the VM: the first look says it is starting, a later one connects."""
    exe = _machine_podman(short_dir / "bin", fake_engine)
    service = PodmanService(configured_url="", run_dir=short_dir / "run", podman_exe=str(exe), platform=platform)
    with pytest.raises(MachineStarting) as starting:
        await service.ensure()
    assert starting.value.action == "wait"
    assert "is starting" in starting.value.problem
    await service.machine_ready()
    endpoint = await service.ensure()
    assert endpoint == PodmanEndpoint(url=f"unix://{fake_engine}", rootless=True,
                                                    started_service=False, machine="podman-machine-default")
    assert _calls(exe) == ["machine inspect", "machine start podman-machine-default", "machine inspect"]
    await service.close()
    assert _calls(exe)[-1] == "machine inspect"  # closing never stops the user's machine


async def test_machine_start_progress_is_visible_while_it_boots(fake_engine: Path, short_dir: Path) -> None:
    exe = _machine_podman(short_dir / "bin", fake_engine, hold=True)
    service = PodmanService(configured_url="", run_dir=short_dir / "run", podman_exe=str(exe), platform="darwin")
    try:
        async def progress_line() -> str:
            try:
                await service.ensure()
            except MachineStarting as err:
                return err.progress.line if err.progress else ""
            return "connected"

        assert await until(progress_line) == 'Starting machine "podman-machine-default"'
        assert _calls(exe).count("machine start podman-machine-default") == 1  # asking again never starts twice
        (exe.parent / "go").touch()
        await service.machine_ready()
        assert (await service.ensure()).machine == "podman-machine-default"
    finally:
        await service.close()


async def test_the_doctor_waits_for_the_machine(fake_engine: Path, short_dir: Path) -> None:
    exe = _machine_podman(short_dir / "bin", fake_engine)
    result = await probe(configured_url="", run_dir=short_dir, podman_exe=str(exe), platform="win32")
    assert result.endpoint is not None
    assert result.endpoint.machine == "podman-machine-default"
    assert result.problem == ""


async def test_windows_machine_pipe_is_reached_through_the_apps_own_relay(fake_engine: Path, short_dir: Path) -> None:
    """Podman on Windows offers only a named pipe; the app relays a loopback port to it (a unix socket stands in)."""
    exe = _machine_podman(short_dir / "bin", fake_engine, running=True, pipe=True)
    service = PodmanService(configured_url="", run_dir=short_dir, podman_exe=str(exe), platform="win32",
                            pipe_opener=unix_socket)
    try:
        endpoint = await service.ensure()
        assert endpoint.url.startswith("tcp://127.0.0.1:")
        assert endpoint.rootless is True
        assert (await ping(endpoint.url)).version == "5.2.0"
    finally:
        await service.close()
    assert not (await ping(endpoint.url)).ok  # closing the service closes the relay


async def test_a_pipe_on_macos_is_not_relayed(fake_engine: Path, short_dir: Path) -> None:
    exe = _machine_podman(short_dir / "bin", fake_engine, running=True, pipe=True)
    with pytest.raises(PodmanUnavailable, match="offers no API socket or pipe"):
        await PodmanService(configured_url="", run_dir=short_dir, podman_exe=str(exe), platform="darwin").ensure()


async def test_running_machine_is_used_without_starting_it(fake_engine: Path, short_dir: Path) -> None:
    exe = _machine_podman(short_dir / "bin", fake_engine, running=True)
    endpoint = await PodmanService(configured_url="", run_dir=short_dir, podman_exe=str(exe),
                                   platform="darwin").ensure()
    assert endpoint.machine == "podman-machine-default"
    assert _calls(exe) == ["machine inspect"]


async def test_missing_machine_says_to_init_one(short_dir: Path) -> None:
    exe = _fake_podman(short_dir / "bin", (
        "print('Error: podman-machine-default: VM does not exist', file=sys.stderr)\n"
        "sys.exit(125)\n"
    ))
    with pytest.raises(PodmanUnavailable) as info:
        await PodmanService(configured_url="", run_dir=short_dir, podman_exe=str(exe), platform="darwin").ensure()
    assert "no Podman machine exists yet" in info.value.problem
    assert "Set up Podman" in info.value.fix
    assert info.value.action == "init_machine"


async def test_machine_that_fails_to_start_shows_why_and_is_tried_again_later(fake_engine: Path,
                                                                              short_dir: Path) -> None:
    exe = _machine_podman(short_dir / "bin", fake_engine, start_fails=True)
    service = PodmanService(configured_url="", run_dir=short_dir, podman_exe=str(exe), platform="darwin")
    with pytest.raises(MachineStarting):
        await service.ensure()
    with pytest.raises(PodmanUnavailable) as info:
        await service.machine_ready()
    with pytest.raises(PodmanUnavailable) as reported:
        await service.ensure()  # the next look reports the failure once ...
    assert not isinstance(reported.value, MachineStarting)
    for err in (info.value, reported.value):
        assert "vfkit exited unexpectedly" in err.problem
        assert "podman machine start podman-machine-default" in err.fix
    with pytest.raises(MachineStarting):
        await service.ensure()  # ... and the one after that tries again
    with pytest.raises(PodmanUnavailable):
        await service.machine_ready()
    await service.close()
    assert _calls(exe).count("machine start podman-machine-default") == 2


async def test_probe_without_podman_reports_not_installed(short_dir: Path) -> None:
    result = await probe(configured_url="", run_dir=short_dir, podman_exe=str(short_dir / "nope"), platform="linux")
    assert result.installed is False
    assert result.endpoint is None
    assert "not installed" in result.problem
    assert "install podman" in result.fix.lower()
