"""Fakes of ``systemctl``, ``loginctl`` and ``launchctl`` for ``nanoclaw service``: this machine has no systemd user
manager (its PID 1 is not systemd) and no launchd.

Each is a real executable on ``PATH`` (a Python script) that appends its arguments to ``calls`` in its folder and keeps
a small model of the service manager in ``state.json`` there: a unit is enabled or not, running or not, lingering is on
or off, an agent is loaded or not. Tests change that state between two commands and read what NanoClaw ran.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

_HEADER = """#!{python} -S
import json, os, pathlib, sys
here = pathlib.Path({home!r})
args = sys.argv[1:]
with open(here / 'calls', 'a') as f:
    f.write(pathlib.Path(__file__).name + ' ' + ' '.join(args) + '\\n')
state_file = here / 'state.json'
state = json.loads(state_file.read_text()) if state_file.exists() else {{}}
def save():
    state_file.write_text(json.dumps(state))
def done(out='', err='', code=0):
    sys.stdout.write(out)
    sys.stderr.write(err)
    save()
    sys.exit(code)
"""

_SYSTEMCTL = r"""
if not state.get('reachable', True):
    done(err='Failed to connect to bus: No medium found\n', code=1)
assert args[0] == '--user', args
verb, rest = args[1], args[2:]
config = os.environ.get('XDG_CONFIG_HOME') or os.path.join(os.environ['HOME'], '.config')
unit_file = pathlib.Path(config, 'systemd', 'user', 'nanoclaw.service')
if verb == 'daemon-reload':
    state['loaded'] = unit_file.read_text() if unit_file.exists() else None
    done()
loaded = state.get('loaded')
if verb in ('enable', 'start', 'restart') and not loaded:
    done(err='Failed to %s unit: Unit file nanoclaw.service does not exist.\n' % verb, code=1)
if verb == 'enable':
    state['enabled'] = True
    if '--now' in rest:
        if state.get('fail_start'):
            done(err='Job for nanoclaw.service failed because the control process exited with error code.\n', code=1)
        state['active'] = True
    done('Created symlink ' + config + '/systemd/user/default.target.wants/nanoclaw.service.\n')
if verb == 'disable':
    state['enabled'] = False
    if '--now' in rest:
        state['active'] = False
    done()
if verb in ('start', 'restart'):
    state['active'] = True
    state['restarts'] = state.get('restarts', 0) + (verb == 'restart')
    done()
if verb == 'is-active':
    done('active\n' if state.get('active') else 'inactive\n', code=0 if state.get('active') else 3)
if verb == 'is-enabled':
    if not loaded:
        done(err='Failed to get unit file state for nanoclaw.service: No such file or directory\n', code=1)
    done('enabled\n' if state.get('enabled') else 'disabled\n', code=0 if state.get('enabled') else 1)
if verb == 'show':
    done('%d\n' % (state.get('main_pid', 4242) if state.get('active') else 0))
done(err='fake systemctl: unknown %r\n' % args, code=2)
"""

_LOGINCTL = r"""
if args[:1] == ['show-user']:
    done('yes\n' if state.get('linger') else 'no\n')
if args[:1] == ['enable-linger']:
    if not state.get('linger_allowed', True):
        done(err='Could not enable linger: Access denied\n', code=1)
    state['linger'] = True
    done()
done(err='fake loginctl: unknown %r\n' % args, code=2)
"""

_LAUNCHCTL = r"""
label = 'io.nanoclaw.service'
verb = args[0]
if verb == 'print' and args[1].endswith('/' + label):
    if not state.get('agent_loaded'):
        done(err='Could not find service "%s" in domain for port\n' % label, code=113)
    done('%s = {\n\tactive count = 1\n\tpath = %s\n\tstate = running\n\tprogram = x\n\tpid = 777\n'
         '\tenvironment = {\n\t\tstate = nested\n\t}\n}\n' % (args[1], state.get('agent_path', '')))
if verb == 'bootstrap':
    if state.get('bootstrap_fails'):
        done(err='Bootstrap failed: 5: Input/output error\n', code=5)
    state['agent_loaded'] = True
    state['agent_path'] = args[2]
    done()
if verb == 'bootout':
    state['agent_loaded'] = False
    done()
if verb == 'enable':
    state['agent_disabled'] = False
    done()
if verb == 'print-disabled':
    inner = '\t"%s" => disabled\n' % label if state.get('agent_disabled') else ''
    done('disabled services = {\n' + inner + '}\n')
done(err='fake launchctl: unknown %r\n' % args, code=2)
"""


def install_fakes(folder: Path) -> Path:
    """Write the three fakes into ``folder`` (put it first on ``PATH``); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    header = _HEADER.replace("{python}", sys.executable).replace("{home!r}", repr(str(folder)))
    header = header.replace("{{", "{").replace("}}", "}")
    for name, body in (("systemctl", _SYSTEMCTL), ("loginctl", _LOGINCTL), ("launchctl", _LAUNCHCTL)):
        path = folder / name
        path.write_text(header + body)
        path.chmod(0o755)
    return folder


def set_state(folder: Path, **values: Any) -> None:
    """Change the fake service manager's state."""
    file = folder / "state.json"
    current = json.loads(file.read_text()) if file.exists() else {}
    current.update(values)
    file.write_text(json.dumps(current))


def state(folder: Path) -> dict[str, Any]:
    """The fake service manager's state."""
    file = folder / "state.json"
    return json.loads(file.read_text()) if file.exists() else {}


def calls(folder: Path) -> list[str]:
    """Every command run, as ``"tool arg arg"`` lines, in order."""
    file = folder / "calls"
    return file.read_text().splitlines() if file.exists() else []
