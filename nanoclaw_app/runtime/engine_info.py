"""What the engine's ``podman info`` means for running agents: a refusal in plain words, notes, container options.

On a person's computer Podman runs rootless, as that person, and the ways it falls short are set up by the machine,
not by NanoClaw: a user without subordinate ids (``/etc/subuid``) cannot unpack any image whose files belong to more
than one user; without cgroup delegation the memory, CPU and process limits are silently dropped; without a storage
configuration Debian's Podman keeps images with the ``vfs`` driver, which copies the whole agent image for every
container. Each is read from the engine's own report here and turned into a sentence the user can act on; the app
never changes the machine's configuration itself.
"""

from __future__ import annotations

import getpass
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nanoclaw_app.runtime.podman_endpoint import PodmanUnavailable

SUBID_FILES = (Path("/etc/subuid"), Path("/etc/subgid"))
SUBID_COUNT = 65536
"""How many subordinate ids to suggest: the range Debian's adduser and Fedora's useradd give each user."""
_FIRST_SUBID = 100000
_RANGE = re.compile(r"^[^:#\s]+:(\d+):(\d+)\s*$")
_LIMIT_CONTROLLERS = (("memory", "memory"), ("cpu", "CPU"), ("pids", "process-count"))


def _section(info: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = info.get(name)
    return value if isinstance(value, Mapping) else {}


def is_rootless(info: Mapping[str, Any]) -> bool:
    """Whether the engine runs as a normal user (container root is that user)."""
    return bool(_section(_section(info, "host"), "security").get("rootless"))


def mapped_ids(info: Mapping[str, Any]) -> int | None:
    """How many user ids the engine's user namespace maps (1 when the user has no subordinate ids); None: not said."""
    mappings = _section(_section(info, "host"), "idMappings").get("uidmap") or []
    if not isinstance(mappings, list) or not mappings:
        return None
    total = 0
    for entry in mappings:
        size = entry.get("size") if isinstance(entry, Mapping) else None
        total += size if isinstance(size, int) else 0
    return total


def _ignores_chown_errors(info: Mapping[str, Any]) -> bool:
    """Storage set to store every file as the user (``ignore_chown_errors``): one id is enough then."""
    options = _section(_section(info, "store"), "graphOptions")
    return any(key.endswith("ignore_chown_errors") and str(value).lower() == "true" for key, value in options.items())


def free_subid_start(texts: list[str]) -> int:
    """The first id past every range in ``/etc/subuid`` and ``/etc/subgid``, aligned: a range nobody else uses."""
    end = _FIRST_SUBID
    for text in texts:
        for line in text.splitlines():
            found = _RANGE.match(line.strip())
            if found:
                end = max(end, int(found.group(1)) + int(found.group(2)))
    return -(-end // SUBID_COUNT) * SUBID_COUNT if end > _FIRST_SUBID else _FIRST_SUBID


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def rootless_refusal(info: Mapping[str, Any], *, user: str | None = None, subid_texts: list[str] | None = None,
                     have_newuidmap: bool | None = None) -> PodmanUnavailable | None:
    """Why a rootless engine cannot run the agent image at all, or None when it can.

    A rootless engine whose user namespace maps a single id (no subordinate ids, or no ``newuidmap``) answers and
    reports fine, then fails every image pull, build and start with a ``lchown ... invalid argument``. Said here,
    before anything is built, with the commands that fix it. Only for an engine on this computer: a Podman machine's
    VM has its own ids, set up by Podman.
    """
    if not is_rootless(info) or mapped_ids(info) != 1 or _ignores_chown_errors(info):
        return None
    name = user or getpass.getuser()
    texts = subid_texts if subid_texts is not None else [_read(p) for p in SUBID_FILES]
    has_ranges = bool(texts) and all(_has_range(text, name) for text in texts)
    if have_newuidmap is None:
        have_newuidmap = shutil.which("newuidmap") is not None and shutil.which("newgidmap") is not None
    steps = []
    if not have_newuidmap:
        steps.append("install the uidmap package (`sudo apt install uidmap` on Debian/Ubuntu, `sudo dnf install "
                     "shadow-utils` on Fedora)")
    if has_ranges:
        why = "the uidmap package, which lets Podman use your subordinate ids, is missing"
    else:
        why = "your user has no subordinate ids in /etc/subuid and /etc/subgid"
        first = free_subid_start(texts)
        last = first + SUBID_COUNT - 1
        steps.append(f"give your user a range of subordinate ids: `sudo usermod --add-subuids {first}-{last} "
                     f"--add-subgids {first}-{last} {name}`")
    steps.append("run `podman system migrate`, then check again")
    return PodmanUnavailable(
        f"Podman runs as your user ({name}) but may use only that one user id, so it cannot unpack the agent "
        f"image, whose files belong to several users ({why})",
        "; ".join(steps),
    )


def _has_range(text: str, name: str) -> bool:
    return any(_RANGE.match(line.strip()) and line.split(":", 1)[0] == name for line in text.splitlines())


def engine_notes(info: Mapping[str, Any]) -> list[str]:
    """Things that work, but worse than the user would expect, each as a sentence with its fix."""
    notes = []
    host = _section(info, "host")
    if is_rootless(info):
        controllers = host.get("cgroupControllers")
        available = set(controllers) if isinstance(controllers, list) else set()
        missing = [label for controller, label in _LIMIT_CONTROLLERS if controller not in available]
        if missing:
            notes.append(
                f"Agent containers run without their {_join(missing)} limits: Podman runs as your user and this "
                f"system does not hand those controls to users (cgroup {host.get('cgroupVersion') or '?'}). An "
                "agent could use all the memory and processors. Fix: use a system with cgroup v2 and systemd "
                "(most current Linux distributions), where they are delegated to users."
            )
    driver = _section(info, "store").get("graphDriverName")
    if driver == "vfs":
        notes.append(
            "Podman keeps images with its slow 'vfs' storage, which copies the whole agent image (about 1 GB) for "
            "every container: each start takes seconds longer and uses that much disk. Fix: install the "
            "containers-storage package (Debian/Ubuntu) or set driver = \"overlay\" under [storage] in "
            "~/.config/containers/storage.conf, then run `podman system reset` (it deletes all of Podman's "
            "containers and images; NanoClaw builds its image again)."
        )
    return notes


def security_options(info: Mapping[str, Any]) -> list[str]:
    """SELinux options for agent containers: none, or label separation off where SELinux is on.

    The container needs the session folders, the runner's source in the app's install folder and the gateway
    socket. Relabeling them for the container (``:z``) is refused for files the user does not own (the install
    folder) and would change the labels of folders the user shares; Podman's own advice for mounting a host socket
    is ``label=disable``. The user namespace, the seccomp filter and the dropped capabilities still confine it.
    """
    enabled = _section(_section(info, "host"), "security").get("selinuxEnabled")
    return ["disable"] if enabled is True else []


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
