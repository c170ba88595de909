"""Windows facts that need a tool to read: whether virtualisation is on, and where Windows keeps its own tools.

Windows' tools are run from the Windows folder itself (never found through PATH): a ``wsl.exe`` or ``shutdown.exe``
earlier on PATH could be anything.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from nanoclaw_app.engine import proc

log = logging.getLogger(__name__)

WSL = ("System32", "wsl.exe")
POWERSHELL = ("System32", "WindowsPowerShell", "v1.0", "powershell.exe")
SHUTDOWN = ("System32", "shutdown.exe")
EXPLORER = ("explorer.exe",)
PROBE_TIMEOUT = 60.0
"""PowerShell's first start on a slow laptop takes several seconds; CIM queries a few more."""

# One PowerShell start answers all three questions, as one line of JSON.
_VIRTUALISATION_SCRIPT = (
    "$ErrorActionPreference='SilentlyContinue';"
    "$f=(Get-CimInstance -ClassName Win32_OptionalFeature -Filter \"Name='VirtualMachinePlatform'\").InstallState;"
    "$c=(Get-CimInstance -ClassName Win32_ComputerSystem).HypervisorPresent;"
    "$p=(Get-CimInstance -ClassName Win32_Processor | Select-Object -First 1).VirtualizationFirmwareEnabled;"
    "@{platform=$f; hypervisor=$c; firmware=$p} | ConvertTo-Json -Compress"
)


def tool(system_root: Path, parts: tuple[str, ...]) -> Path:
    """Path of one of Windows' own programs under the Windows folder (``%SystemRoot%``)."""
    return system_root.joinpath(*parts)


@dataclass(frozen=True, slots=True)
class Virtualisation:
    """What Windows says about virtualisation; ``None`` where it could not tell."""

    platform_feature: bool | None
    """The “Virtual Machine Platform” Windows feature, which WSL 2 runs on."""
    hypervisor: bool | None
    """A hypervisor already runs (then the firmware switch is on, whatever the processor reports)."""
    firmware: bool | None
    """Virtualisation is turned on in the computer's firmware (BIOS/UEFI)."""

    @property
    def firmware_off(self) -> bool:
        """Only a definite “off” counts: a check that could not run must not block the user."""
        return self.hypervisor is False and self.firmware is False


async def virtualisation(system_root: Path) -> Virtualisation:
    """Ask Windows (through PowerShell's CIM queries) whether virtualisation can be used; never raises."""
    exe = tool(system_root, POWERSHELL)
    try:
        result = await proc.run([str(exe), "-NoProfile", "-NonInteractive", "-Command", _VIRTUALISATION_SCRIPT],
                                limit=PROBE_TIMEOUT)
        data = json.loads(result.out.strip() or "{}")
    except (OSError, TimeoutError, ValueError) as err:
        log.warning("could not ask Windows about virtualisation (%s): %s", exe, err)
        return Virtualisation(None, None, None)
    if not isinstance(data, dict):
        return Virtualisation(None, None, None)
    feature = data.get("platform")
    return Virtualisation(
        platform_feature=None if feature is None else str(feature) in ("1", "Enabled"),
        hypervisor=_flag(data.get("hypervisor")),
        firmware=_flag(data.get("firmware")),
    )


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None
