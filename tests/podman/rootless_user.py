"""A normal user on this machine for the rootless tests, made the way a person's account is.

``adduser`` gives the user a home and (Debian) a range in ``/etc/subuid`` and ``/etc/subgid``; ``/run/user/<uid>`` is
made as a login would (logind is not running here). The only test-only settings are the user's own
``~/.config/containers/storage.conf`` (native overlay, what Debian's ``containers-storage`` package configures: the
bare default there is the ``vfs`` driver, which copies the 1 GB image per container) and, when this checkout's Python
lies under a folder only root may enter, an ACL letting this one user through. Machine packages and device
permissions come from ``scripts/setup_podman.sh``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SETUP = "run scripts/setup_podman.sh (scripts/test.sh does)"
STORAGE_CONF = '[storage]\ndriver = "overlay"\n'


@dataclass(frozen=True)
class UserAccount:
    """A user to run things as, with the environment of a login session."""

    name: str
    uid: int
    gid: int
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(self, argv: list[str], *, check: bool = True, env: dict[str, str] | None = None, **kwargs: object
            ) -> subprocess.CompletedProcess[str]:
        """Run a command as the user (its own uid and group only) in its home; output captured as text."""
        return subprocess.run(  # type: ignore[call-overload, no-any-return]
            argv, user=self.uid, group=self.gid, extra_groups=[], env=env or self.env, cwd=self.home,
            capture_output=True, text=True, check=check, **kwargs,
        )

    def folder(self, name: str) -> Path:
        """A fresh empty folder of the user's in its home."""
        path = self.home / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(mode=0o700)
        os.chown(path, self.uid, self.gid)
        return path

    def podman_json(self, *args: str) -> list[dict[str, object]]:
        """``podman <args> --format json`` as the user."""
        import json

        out = self.run(["podman", *args, "--format", "json"])
        value = json.loads(out.stdout or "[]")
        return value if isinstance(value, list) else []


def make_user(name: str, *, subordinate_ids: bool = True) -> UserAccount:
    """Create the user when missing and give it a login's runtime folder and the test's storage settings."""
    if os.geteuid() != 0:
        raise RuntimeError("the rootless tests create a user on this machine, so they run as root (CI does)")
    if shutil.which("adduser") is None:
        raise RuntimeError(f"adduser is missing: {SETUP}")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["adduser", "--disabled-password", "--gecos", "", "--quiet", name], check=True)
        entry = pwd.getpwnam(name)
    _set_subordinate_ids(name, present=subordinate_ids)
    home = Path(entry.pw_dir)
    runtime_dir = Path(f"/run/user/{entry.pw_uid}")
    runtime_dir.mkdir(parents=True, exist_ok=True)
    os.chown(runtime_dir, entry.pw_uid, entry.pw_gid)
    runtime_dir.chmod(0o700)
    env = {
        "HOME": str(home), "USER": name, "LOGNAME": name, "LANG": "C.UTF-8",
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "XDG_RUNTIME_DIR": str(runtime_dir), "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1",
    }
    user = UserAccount(name, entry.pw_uid, entry.pw_gid, home, env)
    config = home / ".config" / "containers"
    if not (config / "storage.conf").exists():
        user.run(["mkdir", "-p", str(config)])
        user.run(["sh", "-c", f"cat > {config}/storage.conf"], input=STORAGE_CONF)
    _let_run_python(user)
    return user


def _set_subordinate_ids(name: str, *, present: bool) -> None:
    """Keep (adding when missing) or remove the user's lines in ``/etc/subuid`` and ``/etc/subgid``."""
    from nanoclaw_app.runtime.engine_info import SUBID_COUNT, SUBID_FILES, free_subid_start

    texts = [path.read_text() if path.exists() else "" for path in SUBID_FILES]
    start = free_subid_start(texts)
    for path, text in zip(SUBID_FILES, texts, strict=True):
        lines = text.splitlines()
        mine = [line for line in lines if line.split(":", 1)[0] == name]
        if present and not mine:
            lines.append(f"{name}:{start}:{SUBID_COUNT}")
        elif not present and mine:
            lines = [line for line in lines if line not in mine]
        else:
            continue
        tmp = path.with_name(path.name + ".nanoclaw-test")
        tmp.write_text("".join(f"{line}\n" for line in lines))
        tmp.chmod(0o644)
        tmp.replace(path)


def _let_run_python(user: UserAccount) -> None:
    """Let the user run this checkout's Python: an ACL on each folder above it that only its owner may enter."""
    probe = [sys.executable, "-c", "import nanoclaw_app, tests.podman.rootless_host"]
    if _runs(user, probe):
        return
    if shutil.which("setfacl") is None:
        raise RuntimeError(f"setfacl is missing: {SETUP}")
    for target in (Path(sys.executable).resolve(), Path(sys.executable), REPO):
        for folder in reversed(target.parents):
            if not folder.stat().st_mode & stat.S_IXOTH:
                subprocess.run(["setfacl", "-m", f"u:{user.name}:x", str(folder)], check=True)
    if not _runs(user, probe):
        raise RuntimeError(f"{user.name} cannot run {sys.executable} with this checkout even with an ACL")


def _runs(user: UserAccount, argv: list[str]) -> bool:
    try:
        return user.run(argv, check=False).returncode == 0
    except PermissionError:  # the interpreter itself cannot be reached
        return False
