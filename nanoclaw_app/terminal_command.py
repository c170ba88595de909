"""The command a person types to reach this very program, for the hints it prints (``nanoclaw open`` and the like).

An installed app has ``nanoclaw`` on PATH (the .deb's /usr/bin/nanoclaw, the portable folder's ~/.local/bin link);
a source checkout has only ``.venv/bin/nanoclaw``, and a plain ``nanoclaw`` there is "command not found" or, worse,
another install reading another home. So the hint says ``nanoclaw`` only when that name on PATH starts this program,
and the full path of this program's entry point otherwise; a home chosen by environment variable goes with it, since
the command is usually typed in another terminal that lacks it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Mapping
from pathlib import Path

from nanoclaw_app.paths import CONFIG_ENV, HOME_ENV

NAME = "nanoclaw"


def entry_points(*, env: Mapping[str, str], executable: str, frozen: bool) -> list[Path]:
    """The files that start this program, the one to print first.

    Frozen: the AppImage file (the running copy lives in a temporary mount), the portable folder's launcher
    (``<folder>/nanoclaw`` runs ``<folder>/lib/nanoclaw/nanoclaw``), the binary itself. From source: the console
    script installed beside this Python (``.venv/bin/nanoclaw``), if there is one.
    """
    if frozen:
        binary = Path(executable)
        found = [Path(env["APPIMAGE"])] if env.get("APPIMAGE") else []
        launcher = binary.parent.parent.parent / NAME
        if binary.parent.parent.name == "lib" and launcher.is_file():
            found.append(launcher)
        return [*found, binary]
    script = Path(sysconfig.get_path("scripts")) / (f"{NAME}.exe" if os.name == "nt" else NAME)
    return [script] if script.is_file() else []


def _same_file(a: str | Path, b: Path) -> bool:
    try:
        return Path(a).samefile(b)
    except OSError:
        return False


def terminal_command(*args: str, env: Mapping[str, str] | None = None, executable: str | None = None,
                     frozen: bool | None = None, which: Callable[..., str | None] = shutil.which) -> str:
    """``nanoclaw <args>`` as it really works in a new terminal on this computer, quoted for its shell."""
    env = os.environ if env is None else env
    executable = executable or sys.executable
    frozen = bool(getattr(sys, "frozen", False)) if frozen is None else frozen
    ours = entry_points(env=env, executable=executable, frozen=frozen)
    on_path = which(NAME, path=env.get("PATH"))
    if on_path is not None and any(_same_file(on_path, entry) for entry in ours):
        program = [NAME]
    elif ours:
        program = [str(ours[0])]
    else:  # run from source without the console script installed
        program = [executable, "-m", "nanoclaw_app"]
    if os.name == "nt":
        return subprocess.list2cmdline([*program, *args])
    chosen = [f"{name}={shlex.quote(env[name])}" for name in (HOME_ENV, CONFIG_ENV) if env.get(name)]
    return " ".join([*chosen, *(shlex.quote(word) for word in [*program, *args])])


def sign_in_hint(*, lan: bool = False) -> str:
    """How a browser gets in to a host without a window: the one-time link command, as it works here."""
    hint = f"to sign in from a browser on this computer, run `{terminal_command('open')}`: it prints a one-time link"
    return hint + ("; other devices on your network sign in with the LAN password" if lan else "")
