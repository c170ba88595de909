"""``nanoclaw doctor``'s look at Podman: installed, reachable, which version, and what to fix; never raises."""

from __future__ import annotations

import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from nanoclaw_app.runtime.podman_endpoint import PodmanEndpoint, PodmanUnavailable, engine_info, ping, run_cli
from nanoclaw_app.runtime.podman_socket import PodmanService

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PodmanProbe:
    """What ``nanoclaw doctor`` reports about Podman."""

    installed: bool
    client_version: str = ""
    """``podman --version`` output, empty when not installed."""
    endpoint: PodmanEndpoint | None = None
    engine_version: str = ""
    problem: str = ""
    fix: str = ""


async def probe(*, configured_url: str, run_dir: Path, podman_exe: str | None = None,
                platform: str = sys.platform) -> PodmanProbe:
    """Check Podman the way the host would use it, stopping any service started for the check; never raises."""
    exe = shutil.which(podman_exe or "podman")
    client_version = ""
    if exe is not None:
        try:
            code, out, err = await run_cli([exe, "--version"], limit=10)
            client_version = out.strip() if code == 0 else ""
            if code != 0:
                log.warning("`%s --version` failed: %s", exe, err.strip())
        except (OSError, TimeoutError) as err:
            log.warning("`%s --version` failed: %s", exe, err)
    service = PodmanService(configured_url=configured_url, run_dir=run_dir, podman_exe=podman_exe, platform=platform,
                            wait_for_machine=True)
    try:
        endpoint = await service.ensure()
        engine = await ping(endpoint.url)
        from nanoclaw_app.runtime.engine_info import rootless_refusal  # it imports this module

        info = await engine_info(endpoint.url) if endpoint.rootless and endpoint.machine is None else None
        refusal = rootless_refusal(info) if info is not None else None
        if refusal is not None:
            raise refusal
    except PodmanUnavailable as err:
        return PodmanProbe(installed=exe is not None, client_version=client_version, problem=err.problem, fix=err.fix)
    except Exception as err:  # the doctor reports every failure instead of crashing
        log.exception("probing Podman failed")
        return PodmanProbe(installed=exe is not None, client_version=client_version, problem=f"{err}",
                           fix="run `podman info` to see what is wrong")
    finally:
        await service.close()
    return PodmanProbe(installed=exe is not None, client_version=client_version, endpoint=endpoint,
                       engine_version=engine.version)
