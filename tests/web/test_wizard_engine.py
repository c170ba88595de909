"""The wizard's container step on Windows and macOS, run here with those systems' facts and fakes of their tools
(`wsl.exe`, `powershell.exe`, `shutdown.exe`, `open`, Podman's installer from a fake GitHub on 127.0.0.1, a `podman`
with a machine whose API is a named pipe): every problem in plain words with the button that fixes it, progress while
it downloads, installs and starts, and the app connecting to the machine by itself at the end."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nanoclaw_app.db import app_state
from nanoclaw_app.engine.facts import HostFacts
from nanoclaw_app.engine.relay import unix_socket
from nanoclaw_app.host import Host
from nanoclaw_app.runtime.podman_runtime import PodmanRuntime
from nanoclaw_app.runtime.podman_socket import PodmanService
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.services import engine_setup
from nanoclaw_app.services.engine_setup import EngineEnvironment
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes import os_tools
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.podman_engine import FakePodmanEngine
from tests.fakes.release_server import FakeReleases
from tests.waiting import until
from tests.web.conftest import screenshot_dir, sign_in

WIN_INSTALLER = "podman-installer-windows-amd64.exe"
MAC_INSTALLER = "podman-installer-macos-universal.pkg"
WIN11 = HostFacts("win32", "AMD64", "10.0.22631", 16 * 1024**3)
SONOMA = HostFacts("darwin", "arm64", "14.5", 16 * 1024**3)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """Unix socket paths must stay short (tmp_path can be long)."""
    folder = Path(tempfile.mkdtemp(prefix="nc-eng-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def machine_api(short_dir: Path) -> AsyncIterator[FakePodmanEngine]:
    engine = FakePodmanEngine(short_dir / "machine.sock")
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


@pytest.fixture
def tools(tmp_path: Path) -> Path:
    """Where the fake tools keep their state and call log."""
    folder = tmp_path / "tools"
    folder.mkdir()
    return folder


@pytest.fixture
def podman_at(tmp_path: Path) -> Path:
    """Where Podman's installer puts `podman` (absent until it runs)."""
    return tmp_path / "Program Files" / "RedHat" / "Podman" / "podman.exe"


@pytest.fixture
async def releases(podman_at: Path, tools: Path) -> AsyncIterator[FakeReleases]:
    fake = FakeReleases(files={WIN_INSTALLER: os_tools.windows_installer(podman_at, tools) + b"#" * 400_000,
                               MAC_INSTALLER: b"xar!" + b"#" * 1000})
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def platform() -> str:
    return "win32"


@pytest.fixture
def web_settings(settings: Settings) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, runtime="podman", podman_url="")


@pytest.fixture
async def web_host(web_settings: Settings, short_dir: Path, tmp_path: Path, tools: Path, podman_at: Path,
                   releases: FakeReleases, machine_api: FakePodmanEngine, platform: str) -> AsyncIterator[Host]:
    """The app on a fake Windows (or macOS) without Podman; the machine, once made, serves ``machine_api``."""
    os_tools.set_state(tools, api=str(machine_api.path), pipe=platform == "win32", wsl_machine=platform == "win32",
                       hold_start=True)
    service = PodmanService(configured_url="", run_dir=short_dir / "run", podman_exe=str(podman_at),
                            platform=platform, pipe_opener=unix_socket)
    host = Host(web_settings, runtime=PodmanRuntime(web_settings, service=service),
                secrets=SecretStore(MemoryKeyring()))
    await host.start()
    root = os_tools.windows_root(tmp_path / "Windows")
    engine_setup.use_environment(host.services, EngineEnvironment(
        platform=platform, facts=WIN11 if platform == "win32" else SONOMA, system_root=root,
        downloads=tmp_path / "downloads", podman_exe=str(podman_at), release_api=releases.api_url,
        macos_podman=podman_at, opener=str(os_tools.macos_open(tools / "open", podman_at, tools))))
    # Step 1 is done: the wizard opens at the container step.
    await app_state.put(host.db, "wizard.model", json.dumps({"kind": "anthropic", "model": "claude-sonnet-4-6"}))
    try:
        yield host
    finally:
        await host.stop()


@pytest.fixture
async def client(web_host: Host) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=web_host.url or "", timeout=30) as c:
        await sign_in(c, web_host)
        yield c


def windows(tmp_path: Path) -> Path:
    return tmp_path / "Windows"


async def shots(page: Any, name: str) -> None:
    """The step card at desktop and at phone width, for a person to look at (toasts of earlier steps removed)."""
    await page.evaluate("document.querySelectorAll('#nc-toasts .toast').forEach((t) => t.remove())")
    card = page.locator('.wz-step[data-step="2"]')
    await card.screenshot(path=str(screenshot_dir() / f"{name}.png"))
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=str(screenshot_dir() / f"{name}-phone.png"), full_page=True)
    await page.set_viewport_size(DESKTOP)


# ---------------------------------------------------------------------------------------------------- in Chromium


async def test_windows_from_no_wsl_to_a_connected_machine_in_the_browser(
        page: Any, web_host: Host, tmp_path: Path, tools: Path, podman_at: Path, releases: FakeReleases,
        machine_api: FakePodmanEngine) -> None:
    from playwright.async_api import expect

    root = windows(tmp_path)
    os_tools.set_state(root, wsl_installed=False)
    page.on("dialog", lambda dialog: dialog.accept())
    await page.goto(f"{web_host.url}setup")
    status, fix = page.locator("#engine-status"), page.locator("#engine-fix")

    # WSL missing: the checklist, the problem in words, and the button that installs it
    await expect(fix).to_have_text("Install WSL")
    await expect(status).to_contain_text("The Windows Subsystem for Linux (WSL), which Podman runs its Linux "
                                         "system in, is not installed.")
    await expect(page.locator("#engine-check-list li.ok")).to_have_count(3)
    await expect(page.locator("#engine-check-list li.bad")).to_have_text("✗Windows Subsystem for Linux (WSL)")
    await shots(page, "wizard-engine-windows-wsl-missing")

    # installing WSL needs a restart, which the next button does (after asking)
    await fix.click()
    await expect(fix).to_have_text("Restart Windows now")
    await expect(status).to_contain_text("Windows has to restart before it can be used.")
    await fix.click()
    await until(lambda: any(c.startswith("shutdown.exe /r /t 30") for c in os_tools.calls(root)))

    # after the restart: Podman is missing, everything else is ready
    os_tools.set_state(root, wsl_reboot=False)
    await page.click("#engine-check")
    await expect(fix).to_have_text("Install Podman")
    await expect(page.locator("#engine-check-list li.ok")).to_have_count(4)
    await expect(status).to_contain_text("Podman, the program that runs your agents' containers, is not installed")
    await shots(page, "wizard-engine-windows-podman-missing")

    # the download shows its progress (held halfway by the fake GitHub)
    releases.hold(WIN_INSTALLER)
    await fix.click()
    await releases.halfway()
    await expect(page.locator("#engine-task-title")).to_have_text("Downloading Podman…")
    await expect(page.locator("#engine-task-amount")).to_contain_text(" of 0.4 MB")
    await expect(page.locator("#engine-task-bar")).not_to_have_attribute("value", "0")
    await expect(fix).to_be_hidden()
    await shots(page, "wizard-engine-windows-downloading")
    releases.release()

    # the installer runs, the machine is made, then started by the app (held until `go`)
    await expect(page.locator("#engine-task-title")).to_have_text("Starting the Podman machine…", timeout=30_000)
    await expect(page.locator("#engine-task-note")).to_contain_text("NanoClaw starts it by itself")
    await shots(page, "wizard-engine-windows-machine-starting")
    assert "setup /install /norestart" in os_tools.calls(tools)
    assert "podman.exe machine init podman-machine-default" in os_tools.calls(tools)
    (tools / "go").touch()

    # connected through the app's own relay to the machine's (stand-in) named pipe
    await expect(status.locator(".notice.good")).to_contain_text(
        "Podman 5.6.1 is running (without administrator rights).", timeout=30_000)
    await expect(page.locator("#engine-task")).to_be_hidden()
    await expect(page.locator("#engine-build")).to_be_visible()
    await shots(page, "wizard-engine-windows-ready")
    assert any(path.endswith("/info") for path in machine_api.requests)


# ---------------------------------------------------------------------------------------------------- the API


async def test_each_windows_problem_comes_with_its_fix(client: httpx.AsyncClient, tmp_path: Path) -> None:
    root = windows(tmp_path)
    os_tools.set_state(root, hypervisor=False, firmware=False)
    report = (await client.post("/api/setup/engine")).json()
    assert report["ok"] is False
    assert report["action"] == ""  # the firmware switch is the person's to flip
    assert "BIOS/UEFI" in report["problem"]
    assert [f["key"] for f in report["findings"]] == ["arch", "windows_build", "memory", "virtualisation"]
    os_tools.set_state(root, hypervisor=True, wsl_version="1.2.4.0")
    report = (await client.post("/api/setup/engine")).json()
    assert report["action"] == "update_wsl"
    task = (await client.post("/api/setup/engine/action", json={"action": "update_wsl"})).json()
    assert task["status"] == "running"
    done = await until(lambda: _finished(client))
    assert done["status"] == "done"
    report = (await client.post("/api/setup/engine")).json()
    assert report["action"] == "install_podman"
    assert report["findings"][-1]["title"] == "Windows Subsystem for Linux (WSL 2.3.26.0)"


async def test_a_damaged_download_is_reported_and_can_be_tried_again(client: httpx.AsyncClient,
                                                                      releases: FakeReleases,
                                                                      podman_at: Path) -> None:
    releases.wrong_sum = True
    await client.post("/api/setup/engine/action", json={"action": "install_podman"})
    task = await until(lambda: _finished(client))
    assert task["status"] == "failed"
    assert "damaged" in task["problem"]
    report = (await client.post("/api/setup/engine")).json()
    assert report["task"]["status"] == "failed"
    assert report["action"] == "install_podman"
    assert not podman_at.exists()


async def test_a_setup_already_running_is_not_started_twice(client: httpx.AsyncClient, releases: FakeReleases,
                                                            tools: Path) -> None:
    releases.hold(WIN_INSTALLER)
    first = (await client.post("/api/setup/engine/action", json={"action": "install_podman"})).json()
    await releases.halfway()
    second = (await client.post("/api/setup/engine/action", json={"action": "init_machine"})).json()
    assert second["action"] == "install_podman"
    assert first["status"] == second["status"] == "running"
    assert releases.requests.count(f"/download/{WIN_INSTALLER}") == 1
    releases.release()
    assert (await until(lambda: _finished(client)))["status"] == "done"
    assert os_tools.calls(tools).count("setup /install /norestart") == 1


@pytest.mark.parametrize("action", ["format_disk", "open_software_update"])
async def test_actions_that_do_not_apply_are_refused(client: httpx.AsyncClient, action: str) -> None:
    response = await client.post("/api/setup/engine/action", json={"action": action})
    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.parametrize("platform", ["darwin"])
async def test_macos_installs_the_package_and_makes_the_machine(client: httpx.AsyncClient, tools: Path,
                                                                tmp_path: Path, web_host: Host) -> None:
    report = (await client.post("/api/setup/engine")).json()
    assert report["action"] == "install_podman"
    assert [f["key"] for f in report["findings"]] == ["macos_version", "memory"]
    async with web_host.events.subscribe() as events:
        await client.post("/api/setup/engine/action", json={"action": "install_podman"})
        task = await until(lambda: _finished(client))
        seen = [events.get_nowait().data for _ in range(events.qsize())]
    assert task["status"] == "done"
    phases = [e["phase"] for e in seen if e.get("phase")]
    assert {"release", "download", "installer", "machine_download", "machine_initialised"} <= set(phases)
    assert f"open -W {tmp_path / 'downloads' / MAC_INSTALLER}" in os_tools.calls(tools)
    assert list((tmp_path / "downloads").iterdir()) == []  # the installer is deleted once it has installed
    report = (await client.post("/api/setup/engine")).json()
    assert report["starting"]["phase"] == "start"  # the app boots the new machine itself
    assert report["action"] == "wait"
    (tools / "go").touch()
    report = await until(lambda: _ready(client))
    assert report["detail"] == "Podman 5.6.1 is running (without administrator rights)."


@pytest.mark.parametrize("platform", ["darwin"])
async def test_closing_the_macos_installer_early_is_not_an_error(client: httpx.AsyncClient, tools: Path) -> None:
    os_tools.set_state(tools, pkg_cancel=True)
    await client.post("/api/setup/engine/action", json={"action": "install_podman"})
    assert (await until(lambda: _finished(client)))["status"] == "cancelled"
    report = (await client.post("/api/setup/engine")).json()
    assert report["task"]["status"] == "cancelled"
    assert report["action"] == "install_podman"


async def _finished(client: httpx.AsyncClient) -> dict[str, Any] | None:
    task = (await client.get("/api/setup/engine/action")).json()
    return task if task["status"] not in ("running", "idle") else None


async def _ready(client: httpx.AsyncClient) -> dict[str, Any] | None:
    report = (await client.post("/api/setup/engine")).json()
    return report if report["ok"] else None


@pytest.mark.parametrize("platform", ["darwin", "win32"])
async def test_a_stopped_machine_is_started_when_the_app_starts(web_settings: Settings, short_dir: Path,
                                                                tools: Path, podman_at: Path, platform: str,
                                                                machine_api: FakePodmanEngine) -> None:
    """No click needed: the app's start boots the machine in the background and comes up meanwhile."""
    os_tools.podman(podman_at, tools, machine="stopped", api=str(machine_api.path), pipe=platform == "win32",
                    hold_start=True)
    service = PodmanService(configured_url="", run_dir=short_dir / "run", podman_exe=str(podman_at),
                            platform=platform, pipe_opener=unix_socket)
    host = Host(web_settings, runtime=PodmanRuntime(web_settings, service=service),
                secrets=SecretStore(MemoryKeyring()))
    await host.start()
    try:
        assert host.url  # the app is up while the machine boots
        await host.engine_connected()
        assert "is starting" in host.state.components["containers"]
        await until(lambda: "podman.exe machine start podman-machine-default" in os_tools.calls(tools))
        (tools / "go").touch()
        await service.machine_ready()
        runtime = host.runtime
        assert isinstance(runtime, PodmanRuntime)
        await runtime.open()  # what the next message does
        assert runtime.api is not None
    finally:
        await host.stop()
    assert os_tools.state(tools)["machine"] == "running"  # quitting the app leaves the user's machine running
