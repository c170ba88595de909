"""A session's container as Podman is asked to make it: command, labels, environment, mounts, user and limits.

The mounts follow DESIGN.md §6; the host doors (gateway and egress sockets, proxy variables) come from
:class:`HostDoors`, and only those of this container.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from nanoclaw_app.paths import resource
from nanoclaw_app.runtime.base import SessionSpec
from nanoclaw_app.runtime.host_doors import DROPPED_CAPABILITIES, Access, HostDoors
from nanoclaw_app.runtime.podman_api import BindMount, ContainerConfig
from nanoclaw_app.settings import Settings

LABEL_INSTALL = "io.nanoclaw.install"
LABEL_SESSION = "io.nanoclaw.session"
LABEL_AGENT = "io.nanoclaw.agent"
RUNNER_COMMAND = ("python", "-P", "-s", "-m", "agent_runner")
"""``-P``: the working folder (the agent's writable ``/workspace/agent``) is not on the import path, so a planted
``agent_runner/`` there can never replace the runner; ``-s``: no user site-packages from the writable home either."""


@dataclass(frozen=True, slots=True)
class EngineFacts:
    """What the connected engine decides about a container: this install's label, rootless or not, SELinux options."""

    install: str
    rootless: bool
    selinux: tuple[str, ...]


def session_container(spec: SessionSpec, name: str, image: str, access: Access | None, *, settings: Settings,
                      doors: HostDoors, engine: EngineFacts) -> ContainerConfig:
    """The container for ``spec``; ``access`` None makes one without host doors (a standby's fingerprint, checks)."""
    return ContainerConfig(
        name=name,
        image=image,
        command=list(RUNNER_COMMAND),
        labels={LABEL_INSTALL: engine.install, LABEL_SESSION: spec.session_id, LABEL_AGENT: spec.agent_group_id},
        environment=_environment(spec, access, settings, doors),
        mounts=_mounts(spec, access, settings, doors),
        log_path=spec.log_path,
        workdir="/workspace/agent",
        memory_mb=settings.container_memory_mb,
        cpus=settings.container_cpus,
        pids_limit=settings.container_pids_limit,
        user=_user(engine.rootless),
        selinux=list(engine.selinux),
        network=doors.network,
        cap_drop=list(DROPPED_CAPABILITIES),
    )


def _environment(spec: SessionSpec, access: Access | None, settings: Settings, doors: HostDoors) -> dict[str, str]:
    env = {
        **spec.env,
        "TZ": settings.timezone,
        "NANOCLAW_TZ_NAME": settings.timezone,
        "NANOCLAW_PROVIDER": spec.provider,
        "NANOCLAW_SESSION_DIR": "/workspace",
        "NANOCLAW_AGENT_DIR": "/workspace/agent",
        "NANOCLAW_SKILLS_DIR": "/app/skills",
    }
    if spec.model:
        env["NANOCLAW_MODEL"] = spec.model
    env.update(doors.environment(spec, access))
    return env


def _mounts(spec: SessionSpec, access: Access | None, settings: Settings, doors: HostDoors) -> list[BindMount]:
    global_dir = settings.paths.home / "global"
    global_dir.mkdir(parents=True, exist_ok=True)
    spec.agent_dir.mkdir(parents=True, exist_ok=True)
    mounts = [
        BindMount(spec.session_dir, "/workspace", read_only=False),
        BindMount(spec.agent_dir, "/workspace/agent", read_only=False),
        BindMount(global_dir, "/workspace/global", read_only=True),
        BindMount(resource("agent_runner"), "/app/agent_runner", read_only=True),
    ]
    skills = resource("skills")
    if skills.is_dir():
        mounts.append(BindMount(skills, "/app/skills", read_only=True))
    mounts.extend(doors.mounts(access))  # this container's own sockets, and no other
    mounts.extend(BindMount(m.source, m.target, read_only=m.read_only) for m in spec.mounts)
    return mounts


def _user(rootless: bool) -> str | None:
    """Who the runner runs as: root in a rootless engine is the user; rootful needs the user's own uid."""
    if rootless or not hasattr(os, "getuid") or os.getuid() == 0:
        return None
    return f"{os.getuid()}:{os.getgid()}"
