"""Where a Podman engine answers, and what to say when none does: endpoints, pings, and the errors with their fix.

Split from :mod:`podman_socket` (which finds or starts the engine) so that the doctor, the setup check and the
runtime share these without the service's process handling. Never imports podman-py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from nanoclaw_app.engine import machine as machine_cli
from nanoclaw_app.errors import ConfigError

log = logging.getLogger(__name__)

PING_TIMEOUT = 3.0
CLI_TIMEOUT = 30.0
_MACHINE_PLATFORMS = ("darwin", "win32")


@dataclass(frozen=True, slots=True)
class PodmanEndpoint:
    """A Podman REST endpoint that answered a ping."""

    url: str
    """``unix:///path/podman.sock`` (or ``tcp://host:port`` when configured so); what podman-py's ``base_url`` takes."""
    rootless: bool
    started_service: bool
    """True when this process started ``podman system service`` and will stop it on ``close()``."""
    machine: str | None = None
    """Name of the Podman machine VM serving it (macOS/Windows)."""


class PodmanUnavailable(ConfigError):
    """Podman is missing, stopped or unreachable.

    A ``ConfigError`` rather than a ``TransientError``: retrying cannot help until the user acts (installs Podman,
    starts the machine, fixes a URL or a permission), so the host shows this message and keeps messages pending.
    ``action`` names what the setup wizard can do about it for the user (``install_podman``, ``init_machine``), or
    is empty when only the user can.
    """

    def __init__(self, problem: str, fix: str, *, action: str = "") -> None:
        super().__init__(f"{problem}. To fix: {fix}")
        self.problem = problem
        self.fix = fix
        self.action = action


class MachineStarting(PodmanUnavailable):
    """The Podman machine is booting (started by us, or by someone else); it answers in a minute or so."""

    def __init__(self, name: str, progress: machine_cli.Progress | None) -> None:
        super().__init__(f"the Podman machine {name} is starting",
                         "wait a moment: NanoClaw starts it for you and connects as soon as it runs", action="wait")
        self.progress = progress


def install_hint(platform: str = sys.platform) -> str:
    """How to install Podman on this OS, as one line a user can follow."""
    if platform == "darwin":
        return ("open NanoClaw's setup: its Containers step installs Podman for you (or install it yourself with "
                "`brew install podman`, then run `podman machine init` and `podman machine start`)")
    if platform == "win32":
        return ("open NanoClaw's setup: its Containers step installs Podman for you (or install it yourself with "
                "`winget install RedHat.Podman`, then run `podman machine init` and `podman machine start`)")
    return ("install Podman: `sudo apt install podman` (Debian/Ubuntu), `sudo dnf install podman` (Fedora), "
            "`sudo pacman -S podman` (Arch); see https://podman.io/docs/installation")


def standard_socket_path(uid: int | None = None) -> Path:
    """The socket systemd's ``podman.socket`` unit listens on for this user (root's is system-wide)."""
    uid = os.geteuid() if uid is None else uid
    if uid == 0:
        return Path("/run/podman/podman.sock")
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}"
    return Path(runtime_dir) / "podman" / "podman.sock"


@dataclass(frozen=True, slots=True)
class Ping:
    """Result of ``GET /_ping``: whether it answered, the engine's API version, or what went wrong."""

    ok: bool
    version: str = ""
    error: str = ""


async def ping(url: str, *, within: float = PING_TIMEOUT) -> Ping:
    """Ask the engine at ``url`` whether it is alive; never raises."""
    try:
        base, uds = _http_target(url)
    except ValueError as err:
        return Ping(False, error=str(err))
    problem = _socket_problem(uds) if uds is not None else None
    if problem is not None:
        return Ping(False, error=problem)
    transport = httpx.AsyncHTTPTransport(uds=uds) if uds is not None else httpx.AsyncHTTPTransport()
    try:
        async with httpx.AsyncClient(transport=transport, base_url=base, timeout=within) as client:
            response = await client.get("/_ping")
    except httpx.HTTPError as err:
        return Ping(False, error=f"no answer at {url}: {_describe(err)}")
    if response.status_code != 200:
        return Ping(False, error=f"{url} answered HTTP {response.status_code} to a ping: {response.text[:200]}")
    return Ping(True, version=response.headers.get("Libpod-Api-Version", ""))


async def engine_info(url: str) -> dict[str, Any] | None:
    """The engine's ``libpod/info`` document, or ``None`` when it cannot be had (logged)."""
    try:
        base, uds = _http_target(url)
        transport = httpx.AsyncHTTPTransport(uds=uds) if uds is not None else httpx.AsyncHTTPTransport()
        async with httpx.AsyncClient(transport=transport, base_url=base, timeout=PING_TIMEOUT) as client:
            response = await client.get("/v4.0.0/libpod/info")
            response.raise_for_status()
            data = response.json()
    except (ValueError, httpx.HTTPError) as err:
        log.warning("could not read Podman info from %s: %s", url, err)
        return None
    return data if isinstance(data, dict) else None


def _socket_problem(path: str) -> str | None:
    """Why a unix socket cannot be used, before trying (a clearer message than a refused connect)."""
    if not Path(path).exists():
        return f"{path} does not exist"
    if not os.access(path, os.R_OK | os.W_OK):
        return f"permission denied on {path}"
    return None


def rootless_from(info: dict[str, Any] | None, fallback: bool) -> bool:
    """Whether the engine runs rootless, by its own info; ``fallback`` when the info does not say."""
    try:
        value = info["host"]["security"]["rootless"] if info else None
    except (KeyError, TypeError):
        value = None
    return value if isinstance(value, bool) else fallback


def _http_target(url: str) -> tuple[str, str | None]:
    """(httpx base URL, unix socket path or None) for a Podman URL; ``ValueError`` for schemes we cannot ping."""
    parts = urlsplit(url)
    if parts.scheme in ("unix", "http+unix"):
        # unix:///run/x.sock has the path in .path; http+unix://%2Frun%2Fx.sock has it (quoted) in the host part.
        path = parts.path if parts.path and not parts.netloc else unquote(parts.netloc) + parts.path
        if not path.startswith("/"):
            raise ValueError(f"{url!r} does not name an absolute socket path (write unix:///path/to/podman.sock)")
        return "http://podman", path
    if parts.scheme in ("tcp", "http") and parts.netloc:
        return f"http://{parts.netloc}", None
    raise ValueError(f"{url!r} is not a Podman URL NanoClaw can use (unix:///path/to/podman.sock or tcp://host:port)")


def _describe(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    cause = err.__cause__ or err.__context__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({cause})"
    return text


async def run_cli(argv: list[str], *, limit: float = CLI_TIMEOUT) -> tuple[int, str, str]:
    """Run a short CLI command: (exit code, stdout, stderr). Kills and reaps it on timeout or cancellation."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(limit):
            out, err = await proc.communicate()
    except BaseException:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
