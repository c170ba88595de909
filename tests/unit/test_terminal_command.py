"""The command NanoClaw prints for signing in is one that works in a new terminal: ``nanoclaw`` where that name on
PATH is this program (the .deb, the portable folder), the full path from a source checkout."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sysconfig
from pathlib import Path

import httpx
import pytest

from nanoclaw_app.terminal_command import terminal_command
from tests.desktop.app_process import AppProcess

SYSTEM_PATH = "/usr/bin:/bin"
"""A new terminal's PATH on a machine where NanoClaw was never installed: the checkout's .venv/bin is not on it."""


def _program(path: Path, body: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(0o755)
    return path


def test_serve_from_a_checkout_prints_a_sign_in_command_that_works_in_another_terminal(tmp_path: Path) -> None:
    console_script = Path(sysconfig.get_path("scripts")) / "nanoclaw"
    assert console_script.is_file(), "scripts/setup.sh installs the package, console script included"
    user = {"HOME": str(tmp_path / "user"), "PATH": SYSTEM_PATH, "LANG": "C.UTF-8",
            "XDG_DATA_HOME": str(tmp_path / "user" / "data"), "XDG_CONFIG_HOME": str(tmp_path / "user" / "config")}
    server = AppProcess([str(console_script), "serve", "--port", "0"],
                        env={**user, "NANOCLAW_HOME": str(tmp_path / "home"), "NANOCLAW_RUNTIME": "local"})
    try:
        url = server.wait_for("is running: http://127.0.0.1:").split("is running: ", 1)[1].strip()
        hint = server.wait_for("to sign in")
        command = hint.split("`")[1]
        assert command.endswith(" open")
        # Typed in another terminal: no NanoClaw variables, no .venv/bin on PATH.
        typed = subprocess.run(["/bin/sh", "-c", command], env=user, capture_output=True, text=True, timeout=120,
                               check=False)
        assert typed.returncode == 0, typed.stderr
        link = typed.stdout.strip()
        assert link.startswith(f"{url}login?token="), link
        signed_in = httpx.get(link, follow_redirects=False, timeout=30)
        assert signed_in.status_code in (302, 303), signed_in.text
        assert "nanoclaw_session" in signed_in.cookies
    finally:
        server.proc.send_signal(signal.SIGINT)
        code = server.wait()
    assert code == 0, server.output


def test_the_installed_package_on_path_is_named_nanoclaw(tmp_path: Path) -> None:
    """The .deb: /usr/bin/nanoclaw links to the frozen program in /usr/lib/nanoclaw."""
    binary = _program(tmp_path / "usr" / "lib" / "nanoclaw" / "nanoclaw")
    (tmp_path / "usr" / "bin").mkdir()
    (tmp_path / "usr" / "bin" / "nanoclaw").symlink_to(Path("..") / "lib" / "nanoclaw" / "nanoclaw")
    env = {"PATH": f"{tmp_path / 'usr' / 'bin'}:{SYSTEM_PATH}"}
    assert terminal_command("open", env=env, executable=str(binary), frozen=True) == "nanoclaw open"


def test_the_portable_folder_linked_into_the_users_bin_is_named_nanoclaw(tmp_path: Path) -> None:
    """install.sh links ~/.local/bin/nanoclaw to the folder's launcher, which runs lib/nanoclaw/nanoclaw."""
    folder = tmp_path / "nanoclaw-1.0-linux-x86_64"
    binary = _program(folder / "lib" / "nanoclaw" / "nanoclaw")
    _program(folder / "nanoclaw", '#!/bin/sh\nexec "$(dirname "$(readlink -f "$0")")/lib/nanoclaw/nanoclaw" "$@"\n')
    bin_dir = tmp_path / "user" / ".local" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "nanoclaw").symlink_to(folder / "nanoclaw")
    env = {"PATH": f"{bin_dir}:{SYSTEM_PATH}"}
    assert terminal_command("open", env=env, executable=str(binary), frozen=True) == "nanoclaw open"
    # Not installed into PATH: the folder's launcher, which works from anywhere.
    assert terminal_command("open", env={"PATH": SYSTEM_PATH}, executable=str(binary), frozen=True) == (
        f"{shlex.quote(str(folder / 'nanoclaw'))} open")


def test_another_nanoclaw_on_path_is_not_named_for_this_one(tmp_path: Path) -> None:
    """A checkout beside an installed package: plain ``nanoclaw`` would reach the other program."""
    other = _program(tmp_path / "other" / "nanoclaw")
    binary = _program(tmp_path / "here dir" / "lib" / "nanoclaw" / "nanoclaw")
    command = terminal_command("open", env={"PATH": str(other.parent), "NANOCLAW_HOME": "/srv/nano claw"},
                               executable=str(binary), frozen=True)
    assert command == f"NANOCLAW_HOME='/srv/nano claw' '{binary}' open"


@pytest.mark.skipif(os.name == "nt", reason="POSIX shell quoting")
def test_a_checkout_without_its_console_script_prints_the_module_command(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sysconfig, "get_path", lambda _name: str(tmp_path / "no-scripts"))
    command = terminal_command("open", env={"PATH": SYSTEM_PATH}, executable="/opt/py/bin/python3", frozen=False)
    assert command == "/opt/py/bin/python3 -m nanoclaw_app open"
