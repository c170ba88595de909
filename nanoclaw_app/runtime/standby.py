"""Standby containers: the next container of a recently active session, created and initialised but not started.

A cold start on Podman spends most of its engine time before the first process runs: creating the container, then,
in ``start``, making its network namespace and running the OCI runtime's ``create`` with every mount. ``podman init``
does all of that ahead of time, so starting a standby is only the exec of the runner (about 20 ms instead of 200 ms
here). Nothing of the image runs in a standby, and it holds about 13 MB (conmon and the paused ``runc init``).

A standby only ever serves the session it was made for, with that session's mounts and a gateway token of its own.
It is used only when what it was made with still matches what a fresh start would use: the image, the environment,
the limits, and the identity (device and inode) of every folder mounted into it, because the OCI runtime bound the
folders when it initialised the container: a session folder that was set aside and recreated since would otherwise
still be the old one inside.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nanoclaw_app.runtime.base import STANDBY_MAX_AGE_SECONDS
from nanoclaw_app.runtime.podman_api import ContainerConfig

if TYPE_CHECKING:
    from nanoclaw_app.runtime.host_doors import Access



@dataclass(slots=True)
class Standby:
    """One prepared container of a session."""

    name: str
    fingerprint: str
    access: Access | None
    made_at: float = field(default_factory=time.monotonic)

    def expired(self, now: float | None = None) -> bool:
        """Older than ``STANDBY_MAX_AGE_SECONDS``."""
        return (time.monotonic() if now is None else now) - self.made_at > STANDBY_MAX_AGE_SECONDS


class MountGone(Exception):
    """A folder to be mounted does not exist (any more)."""


def fingerprint(config: ContainerConfig) -> str:
    """What a container is made with, apart from its name: equal fingerprints make interchangeable containers.

    ``config`` is built without the container's own gateway access (each container has its own token and socket).
    Raises ``MountGone`` when a mounted folder is missing.
    """
    mounts = []
    for mount in config.mounts:
        try:
            st = mount.source.stat()
        except OSError as err:
            raise MountGone(f"{mount.source}: {err.strerror}") from err
        mounts.append([str(mount.source), mount.target, mount.read_only, st.st_dev, st.st_ino])
    made_with = {
        "image": config.image,
        "command": config.command,
        "labels": config.labels,
        "environment": config.environment,
        "mounts": mounts,
        "log_path": str(config.log_path),
        "workdir": config.workdir,
        "memory_mb": config.memory_mb,
        "cpus": config.cpus,
        "pids_limit": config.pids_limit,
        "user": config.user,
        "network": config.network,
        "cap_drop": config.cap_drop,
    }
    return hashlib.sha256(json.dumps(made_with, sort_keys=True).encode()).hexdigest()
