"""A clean Debian root file system to install NanoClaw's ``.deb`` into: a Podman container of the local base image.

No registry is reachable here, so the root is ``localhost/nanoclaw-base:bookworm`` (scripts/setup_podman.sh makes it
with debootstrap); its apt reaches the Debian mirror through this machine's network. Downloaded packages are kept in
a cache folder that outlives the test run (``NANOCLAW_TEST_CACHE``, else ``~/.cache/nanoclaw-tests``), so a machine
downloads Podman and WebKitGTK once, not at every run. Homes live in a host folder mounted at ``/home``, so a test can
read and compare a user's files from outside.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

BASE_IMAGE = os.environ.get("NANOCLAW_TEST_BASE_IMAGE", "localhost/nanoclaw-base:bookworm")
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
# Test-only speed-ups inside the throwaway root: dpkg skips fsync, and leaves out manuals and translations.
DPKG_SPEEDUP = """force-unsafe-io
path-exclude=/usr/share/man/*
path-exclude=/usr/share/locale/*
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/nanoclaw/*
"""


def cache_dir() -> Path:
    """The persistent download cache for apt (``archives`` and ``lists``)."""
    root = Path(os.environ.get("NANOCLAW_TEST_CACHE") or Path.home() / ".cache" / "nanoclaw-tests")
    folder = root / "apt-bookworm"
    for sub in ("archives/partial", "lists/partial"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return folder


class DebianRoot:
    """One container of the base image, running ``sleep`` so commands can be run in it with ``podman exec``."""

    def __init__(self, debs: Path, homes: Path) -> None:
        self.debs = debs
        self.homes = homes
        self.name = f"nanoclaw-deb-test-{uuid.uuid4().hex[:8]}"

    def start(self) -> None:
        """Start the container with the packages folder at /debs and the homes at /home."""
        podman = shutil.which("podman")
        if podman is None:
            pytest.fail("podman is not installed: run scripts/setup_podman.sh (scripts/test.sh does)")
        if subprocess.run([podman, "image", "exists", BASE_IMAGE], check=False).returncode != 0:
            pytest.fail(f"the local base image {BASE_IMAGE} is missing: run scripts/setup_podman.sh")
        cache = cache_dir()
        mounts = [
            "-v", f"{self.debs}:/debs:ro",
            "-v", f"{self.homes}:/home",
            "-v", f"{cache / 'archives'}:/var/cache/apt/archives",
            "-v", f"{cache / 'lists'}:/var/lib/apt/lists",
        ]
        if HOST_CA.is_file():  # the proxy's certificate authority, for anything fetched over HTTPS
            mounts += ["-v", f"{HOST_CA}:{HOST_CA}:ro"]
        subprocess.run(
            [podman, "run", "-d", "--name", self.name, "--network", "host", *mounts, BASE_IMAGE,
             "sleep", "infinity"],
            check=True, capture_output=True, text=True, timeout=120,
        )
        self.sh("rm -f /etc/apt/apt.conf.d/docker-clean; "
                "echo 'Binary::apt::APT::Keep-Downloaded-Packages \"true\";' > /etc/apt/apt.conf.d/90keep; "
                f"printf %s {shlex.quote(DPKG_SPEEDUP)} > /etc/dpkg/dpkg.cfg.d/90test-speedup")

    def stop(self) -> None:
        """Remove the container (its homes stay in the host folder until the test's tmp_path goes)."""
        subprocess.run(["podman", "rm", "-f", "-t", "0", self.name], check=False, capture_output=True, timeout=120)

    def run(self, args: list[str], *, user: str | None = None, env: dict[str, str] | None = None,
            check: bool = True, timeout: float = 600, detach: bool = False) -> subprocess.CompletedProcess[str]:
        """Run ``args`` in the root, as root or as ``user`` (with that user's HOME)."""
        options: list[str] = []
        if user is not None:
            options += ["--user", user, "--workdir", f"/home/{user}", "-e", f"HOME=/home/{user}", "-e", f"USER={user}"]
        for name, value in (env or {}).items():
            options += ["-e", f"{name}={value}"]
        if detach:
            options.append("-d")
        done = subprocess.run(["podman", "exec", *options, self.name, *args], capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and done.returncode != 0:
            pytest.fail(f"`{shlex.join(args)}` failed ({done.returncode}) in the Debian root:\n"
                        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def sh(self, script: str, *, user: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a shell script (``sh -c``)."""
        return self.run(["sh", "-c", script], user=user, check=check)

    def apt_install(self, *packages: str) -> subprocess.CompletedProcess[str]:
        """``apt-get install`` without questions or recommended extras (a local ``.deb`` is given by its path)."""
        return self.run(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q",
                         "--no-install-recommends", *packages])

    def add_user(self, name: str) -> Path:
        """A normal user with a home; returns the home as seen from the host."""
        self.run(["useradd", "--create-home", "--shell", "/bin/bash", name])
        return self.homes / name
