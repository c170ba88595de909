"""The Podman machine, the small Linux VM Podman runs containers in on macOS and Windows: creating and starting it.

Progress is read from what ``podman machine init`` / ``start`` print.
The CLI has no machine-readable progress, so the lines it prints are matched to phases (finding the image,
downloading it, unpacking, importing into WSL, configuring, starting) and sizes such as ``312.5MiB / 1.0GiB`` or a
percentage inside a phase become a fraction.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from nanoclaw_app.engine import proc
from nanoclaw_app.engine.problem import SetupFailed

log = logging.getLogger(__name__)

DEFAULT_NAME = "podman-machine-default"
INIT_TIMEOUT = 3600.0
"""Downloading the machine image (about 1 GB) on a slow line."""
START_TIMEOUT = 300.0
LIST_TIMEOUT = 30.0

# First match wins; matched case-insensitively against one line.
_PHASES: tuple[tuple[str, str], ...] = (
    ("looking up podman machine image", "lookup"),
    ("getting image source signatures", "download"),
    ("copying blob", "download"),
    ("copying config", "download"),
    ("writing manifest", "download"),
    ("extracting compressed file", "extract"),
    ("image resized", "extract"),
    ("importing operating system into wsl", "import"),
    ("configuring system", "configure"),
    ("machine init complete", "initialised"),
    ("starting machine", "start"),
    ("waiting for vm", "start"),
    ("mounting volume", "start"),
    ("api forwarding listening on", "start"),
    ("started successfully", "running"),
)
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)\s*/\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)", re.IGNORECASE)
_DONE = re.compile(r"\bdone\b")
_PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*%")
_UNITS = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 1024, "mib": 1024**2, "gib": 1024**3,
          "tib": 1024**4}
_NETWORK = ("dial tcp", "no such host", "i/o timeout", "connection refused", "connection reset", "tls handshake",
            "temporary failure in name resolution", "network is unreachable")


@dataclass(frozen=True, slots=True)
class Progress:
    """Where ``podman machine`` is: its phase, how far within it (None when unknown) and the line that said so."""

    phase: str
    fraction: float | None
    line: str


class ProgressReader:
    """Turns printed lines into :class:`Progress`; a line that says nothing new keeps the phase it is in."""

    def __init__(self, first_phase: str) -> None:
        self.phase = first_phase

    def read(self, line: str) -> Progress:
        """The progress one line shows."""
        lower = line.lower()
        phase = next((name for words, name in _PHASES if words in lower), None)
        if phase is not None:
            self.phase = phase
        fraction = _fraction(line)
        if fraction is None and _DONE.search(lower) and phase in ("download", "extract"):
            fraction = 1.0
        return Progress(self.phase, fraction, line)


def _fraction(line: str) -> float | None:
    size = _SIZE.search(line)
    if size:
        done = float(size.group(1)) * _UNITS[size.group(2).lower()]
        total = float(size.group(3)) * _UNITS[size.group(4).lower()]
        if total > 0:
            return min(done / total, 1.0)
    percent = _PERCENT.search(line)
    if percent:
        return min(float(percent.group(1)) / 100, 1.0)
    return None


async def exists(exe: str) -> bool:
    """Whether any Podman machine has been created (``podman machine list``)."""
    try:
        result = await proc.run([exe, "machine", "list", "--format", "json"], limit=LIST_TIMEOUT)
    except (OSError, TimeoutError) as err:
        raise SetupFailed(f"Podman did not answer `podman machine list` ({err})",
                          "reinstall Podman, or restart the computer and try again") from err
    if result.code != 0:
        raise SetupFailed(f"`podman machine list` failed: {result.text[-300:]}",
                          "reinstall Podman, or restart the computer and try again")
    try:
        machines = json.loads(result.out or "[]")
    except ValueError:
        return False
    return isinstance(machines, list) and len(machines) > 0


async def init(exe: str, on_progress: Callable[[Progress], None], *, name: str = DEFAULT_NAME) -> None:
    """``podman machine init``: download Podman's Linux image and create the machine from it."""
    reader = ProgressReader("lookup")
    result = await _stream([exe, "machine", "init", name], reader, on_progress, INIT_TIMEOUT, "creating")
    if result.code != 0 and "already exists" not in result.text:
        raise SetupFailed(f"Podman could not create its machine: {_error_line(result)}", _init_fix(result.text))
    on_progress(Progress("initialised", 1.0, "Machine init complete"))


async def start(exe: str, on_progress: Callable[[Progress], None], *, name: str = DEFAULT_NAME) -> None:
    """``podman machine start``: boot the machine and wait until its API is forwarded to this computer."""
    reader = ProgressReader("start")
    result = await _stream([exe, "machine", "start", name], reader, on_progress, START_TIMEOUT, "starting")
    if result.code != 0 and "already running" not in result.text:
        raise SetupFailed(f"the Podman machine {name} did not start: {_error_line(result)}",
                          f"click “Check again” to try once more; if it fails again, restart the computer (or run "
                          f"`podman machine stop {name}` and `podman machine start {name}` in a terminal)")
    on_progress(Progress("running", 1.0, f"Machine {name} started"))


async def _stream(argv: list[str], reader: ProgressReader, on_progress: Callable[[Progress], None], limit: float,
                  doing: str) -> proc.Result:
    try:
        return await proc.stream(argv, lambda line: on_progress(reader.read(line)), limit=limit)
    except OSError as err:
        raise SetupFailed(f"Podman could not be run ({err})", "reinstall Podman, then try again") from err
    except TimeoutError:
        raise SetupFailed(f"Podman was still {doing} its machine after {limit / 60:.0f} minutes",
                          "check the internet connection, restart the computer and try again") from None


def _error_line(result: proc.Result) -> str:
    """The ``Error: ...`` line Podman ends with, else its last line."""
    lines = result.text.splitlines()
    error = next((line for line in reversed(lines) if line.lower().startswith("error")), None)
    text = error or (lines[-1] if lines else f"it ended with code {result.code}")
    return text.removeprefix("Error: ").strip()[:400]


def _init_fix(text: str) -> str:
    lower = text.lower()
    if "no space left" in lower:
        return "free about 2 GB of disk space, then click “Set up Podman” again"
    if any(words in lower for words in _NETWORK):
        return ("Podman downloads its Linux system (about 1 GB) from the internet: check the connection, then click "
                "“Set up Podman” again")
    if "wsl" in lower and ("not installed" in lower or "install" in lower):
        return "WSL is missing or incomplete: restart Windows, open NanoClaw again and repeat the setup"
    return "click “Set up Podman” to try again; `podman machine init` in a terminal shows more"
