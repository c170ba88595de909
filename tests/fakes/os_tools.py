"""Fakes of the operating system's tools that engine setup runs: ``wsl.exe``, ``powershell.exe``, ``shutdown.exe``,
macOS's ``open``, Podman's installer and a ``podman`` with a machine.

Each is a real executable (a Python script) that records its arguments in ``calls`` next to it and keeps its state
in ``state.json`` there, so a test can change the computer's state between two checks and see what the app ran.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from nanoclaw_app.engine import windows

_HEADER = """#!{python}
import json, os, pathlib, sys, time
here = pathlib.Path({home!r})
args = sys.argv[1:]
with open(here / 'calls', 'a') as f:
    f.write(pathlib.Path(__file__).name + ' ' + ' '.join(args) + '\\n')
state_file = here / 'state.json'
state = json.loads(state_file.read_text()) if state_file.exists() else {{}}
def save():
    state_file.write_text(json.dumps(state))
def out(text, code=0, utf16=False):
    data = text.encode('utf-16-le') if utf16 else text.encode()
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    sys.exit(code)
"""


def tool(path: Path, body: str, home: Path | None = None) -> Path:
    """An executable at ``path`` running ``body`` after the common header (``args``, ``state``, ``save``, ``out``).

    ``home`` (default: its folder) holds the state and the call log it shares with the other fakes there.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    header = _HEADER.replace("{python}", sys.executable).replace("{home!r}", repr(str(home or path.parent)))
    path.write_text(header.replace("{{", "{").replace("}}", "}") + body)
    path.chmod(0o755)
    return path


def set_state(folder: Path, **values: Any) -> None:
    """Change the fake computer's state (shared by the tools in ``folder``)."""
    file = folder / "state.json"
    state = json.loads(file.read_text()) if file.exists() else {}
    state.update(values)
    file.write_text(json.dumps(state))


def state(folder: Path) -> dict[str, Any]:
    file = folder / "state.json"
    return json.loads(file.read_text()) if file.exists() else {}


def calls(folder: Path) -> list[str]:
    file = folder / "calls"
    return file.read_text().splitlines() if file.exists() else []


_WSL = r"""
installed, reboot = state.get('wsl_installed', True), state.get('wsl_reboot', False)
utf16 = state.get('wsl_utf16', False)
if args == ['--version']:
    if installed and not reboot:
        lines = state.get('wsl_version_text') or ('WSL version: %s\nKernel version: 5.15.153.1-2\n'
                 'WSLg version: 1.0.61\nWindows version: 10.0.22631.4037\n' % state.get('wsl_version', '2.2.4.0'))
        out(lines, 0, utf16)
    if reboot:
        out('Error code: Wsl/WSL_E_WSL_OPTIONAL_COMPONENT_REQUIRED\n', 1, utf16)
    out('Copyright (c) Microsoft Corporation. All rights reserved.\nUsage: wsl.exe [Argument]\n', 1, utf16)
if args == ['--list']:
    if reboot:
        out('Error code: Wsl/WSL_E_WSL_OPTIONAL_COMPONENT_REQUIRED\n', 1, utf16)
    out('Windows Subsystem for Linux has no installed distributions.\n'
        'Error code: Wsl/WSL_E_DEFAULT_DISTRO_NOT_FOUND\n', 1, utf16)
if args == ['--install', '--no-distribution']:
    mode = state.get('wsl_install', 'reboot')
    if mode == 'refused':
        out('The operation was canceled by the user.\nError code: Wsl/InstallDistro/E_ABORT\n', 1, utf16)
    state['wsl_installed'] = True
    state['wsl_reboot'] = mode == 'reboot'
    save()
    out('Installing: Windows Subsystem for Linux\nThe requested operation is successful. Changes will not be '
        'effective until the system is rebooted.\n', 0, utf16)
if args[:1] == ['--update']:
    mode = state.get('wsl_update', 'ok')
    if mode == 'store_blocked' and '--web-download' not in args:
        out('The Microsoft Store is not available.\nError code: Wsl/UpdatePackage/0x80073d02\n', 1, utf16)
    state['wsl_version'] = '2.3.26.0'
    save()
    out('Checking for updates.\nUpdating Windows Subsystem for Linux to version: 2.3.26.\n', 0, utf16)
out('unexpected arguments\n', 2)
"""

_POWERSHELL = r"""
out(json.dumps({'platform': 1 if state.get('vmp_on', True) else 2, 'hypervisor': state.get('hypervisor', True),
                'firmware': state.get('firmware', False)}))
"""

_RECORDER = "out('')\n"


def windows_root(folder: Path, **values: object) -> Path:
    """A fake Windows folder (``%SystemRoot%``) whose ``wsl.exe``, ``powershell.exe``, ``shutdown.exe`` and
    ``explorer.exe`` share one state and call log (in ``folder``); returns the folder."""
    tool(windows.tool(folder, windows.WSL), _WSL, folder)
    tool(windows.tool(folder, windows.POWERSHELL), _POWERSHELL, folder)
    tool(windows.tool(folder, windows.SHUTDOWN), _RECORDER, folder)
    tool(windows.tool(folder, windows.EXPLORER), "out('', 1)\n", folder)  # explorer.exe ends with 1 when all is well
    set_state(folder, **values)
    return folder


_PODMAN = r"""
import random
machine = state.get('machine', 'none')
if args == ['--version']:
    out('podman version 5.6.1\n')
if args[:3] == ['machine', 'list', '--format']:
    out(json.dumps([] if machine == 'none' else [{'Name': 'podman-machine-default', 'Running': machine == 'running'}]))
if args[:2] == ['machine', 'init']:
    if state.get('init_fail'):
        sys.stderr.write(state['init_fail'] + '\n')
        sys.exit(125)
    say = lambda text: (sys.stdout.write(text), sys.stdout.flush())
    say('Looking up Podman Machine image at quay.io/podman/machine-os:5.6 to create VM\n')
    say('Getting image source signatures\n')
    for step in range(0, 11):  # the progress bar is redrawn with carriage returns
        say('\rCopying blob 26cff917a2a5 %d.0MiB / 1000.0MiB' % (step * 100))
    say('\rCopying blob 26cff917a2a5 done   |\n')
    say('Copying config 44136fa355 done   |\nWriting manifest to image destination\n')
    say('Extracting compressed file: podman-machine-default-amd64: done\n')
    if state.get('wsl_machine'):
        say('Importing operating system into WSL (this may take a few minutes on a new WSL install)...\n')
        say('The operation completed successfully.\nConfiguring system...\n')
    state['machine'] = 'stopped'
    save()
    out('Machine init complete\nTo start your machine run:\n\n\tpodman machine start\n')
if args[:2] == ['machine', 'inspect']:
    if machine == 'none':
        sys.stderr.write('Error: podman-machine-default: VM does not exist\n')
        sys.exit(125)
    api = {'Path': state.get('api', '')}
    info = {'PodmanSocket': None, 'PodmanPipe': api} if state.get('pipe') else {'PodmanSocket': api, 'PodmanPipe': None}
    out(json.dumps([{'Name': 'podman-machine-default', 'ConnectionInfo': info, 'Rootful': False,
                     'State': machine}]))
if args[:2] == ['machine', 'start']:
    sys.stdout.write('Starting machine "podman-machine-default"\n')
    sys.stdout.flush()
    while state.get('hold_start') and not (here / 'go').exists():
        time.sleep(0.02)
    state['machine'] = 'running'
    save()
    out('API forwarding listening on: %s\nMachine "podman-machine-default" started successfully\n' % state.get('api'))
sys.stderr.write('Error: unknown command %s\n' % ' '.join(args))
sys.exit(125)
"""


def podman(path: Path, home: Path, **values: object) -> Path:
    """A ``podman`` with a machine: none until ``machine init``, then stopped until ``machine start``.

    State: ``api`` (the socket the machine serves, or its pipe with ``pipe=True``), ``hold_start`` (the start waits
    for a file ``go`` in ``home``), ``init_fail`` (what init prints before failing), ``wsl_machine`` (Windows lines).
    """
    set_state(home, **values)
    return tool(path, _PODMAN, home)


def podman_source(home: Path) -> str:
    """The text of the fake ``podman``, for an installer to put in place."""
    header = _HEADER.replace("{python}", sys.executable).replace("{home!r}", repr(str(home)))
    return header.replace("{{", "{").replace("}}", "}") + _PODMAN


def windows_installer(podman_at: Path, home: Path, code: int = 0) -> bytes:
    """Podman's Windows setup.exe: ``/install /norestart`` puts ``podman`` at ``podman_at`` (unless cancelled)."""
    script = f"""#!{sys.executable}
import pathlib, sys
with open({str(home / 'calls')!r}, 'a') as f:
    f.write('setup ' + ' '.join(sys.argv[1:]) + '\\n')
if {code} in (0, 3010):
    target = pathlib.Path({str(podman_at)!r})
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text({podman_source(home)!r})
    target.chmod(0o755)
sys.exit({code})
"""
    return script.encode()


def macos_open(path: Path, podman_at: Path, home: Path) -> Path:
    """macOS's ``open``: ``open -W x.pkg`` “installs” Podman at ``podman_at`` unless the state says ``pkg_cancel``."""
    body = f"""
if args[:1] == ['-W'] and args[1].endswith('.pkg') and not state.get('pkg_cancel'):
    target = pathlib.Path({str(podman_at)!r})
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text({podman_source(home)!r})
    target.chmod(0o755)
out('')
"""
    return tool(path, body, home)
