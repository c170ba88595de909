"""``nanoclaw service install|uninstall|status``: NanoClaw as its user's background service, for a home server.

- Linux: a systemd user unit, ``~/.config/systemd/user/nanoclaw.service``, that runs ``nanoclaw serve``; enabled and
  started with ``systemctl --user``. A user's services run only while that user is logged in unless *lingering* is on
  (``loginctl enable-linger``), so install and status say where it stands, in words.
- macOS: a LaunchAgent, ``~/Library/LaunchAgents/io.nanoclaw.service.plist``, loaded with ``launchctl bootstrap``;
  launchd restarts it when it crashes. (The window's own "start when I log in" agent is ``io.nanoclaw.login``.)

Nothing here needs root or runs as root. Every command goes through a :class:`Runner`, so tests can put fakes of
``systemctl``, ``loginctl`` and ``launchctl`` on ``PATH`` and read what was run.
"""

from __future__ import annotations

import getpass
import os
import plistlib
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nanoclaw_app.paths import CONFIG_ENV, HOME_ENV, Paths

UNIT = "nanoclaw.service"
AGENT_LABEL = "io.nanoclaw.service"
ENV_FILE = "service.env"
NOT_RUNNING = 3  # the exit code of ``status`` when the service is not running (systemctl's own convention)


@dataclass(frozen=True, slots=True)
class Completed:
    """What a command did: its exit code and output (127 with a sentence when the command does not exist)."""

    code: int
    out: str = ""
    err: str = ""

    @property
    def reason(self) -> str:
        """The command's own first line of complaint, for the user."""
        text = (self.err or self.out).strip()
        return text.splitlines()[0] if text else f"exit code {self.code}"


Runner = Callable[[Sequence[str]], Completed]


def run_command(args: Sequence[str]) -> Completed:
    """Run an OS tool found on ``PATH`` (``systemctl``, ``loginctl``, ``launchctl``) and collect its output."""
    try:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
    except FileNotFoundError:
        return Completed(127, err=f"{args[0]} is not installed here")
    except subprocess.TimeoutExpired:
        return Completed(124, err=f"{args[0]} did not answer within a minute")
    return Completed(done.returncode, done.stdout, done.stderr)


@dataclass(slots=True)
class Outcome:
    """Lines for the user and the exit code of the command."""

    lines: list[str] = field(default_factory=list)
    code: int = 0

    def say(self, line: str) -> None:
        """Add a line."""
        self.lines.append(line)


def service_command(*, env: Mapping[str, str] | None = None, executable: str | None = None,
                    frozen: bool | None = None) -> list[str]:
    """How the service starts this very NanoClaw headless.

    The frozen binary starts itself (an AppImage by its own file, not by the temporary mount it runs from); from
    source, this Python runs the package.
    """
    env = os.environ if env is None else env
    executable = executable or sys.executable
    frozen = bool(getattr(sys, "frozen", False)) if frozen is None else frozen
    if frozen:
        return [env.get("APPIMAGE") or executable, "serve"]
    return [executable, "-m", "nanoclaw_app", "serve"]


def service_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables that chose this home, so the service opens the same data as the command that installed it."""
    env = os.environ if env is None else env
    return {name: env[name] for name in (HOME_ENV, CONFIG_ENV) if env.get(name)}


# ---------------------------------------------------------------------------------------------------- Linux


def _systemd_quote(arg: str) -> str:
    """One word of a unit's ``ExecStart=`` or ``Environment=``: quoted, with ``%`` and ``$`` kept literal."""
    inner = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{inner}"'


def unit_text(command: Sequence[str], env: Mapping[str, str], env_file: Path) -> str:
    """The systemd user unit that runs ``command``."""
    lines = [
        "# Written by `nanoclaw service install`; `nanoclaw service uninstall` removes it.",
        "[Unit]",
        "Description=NanoClaw personal AI assistant (headless)",
        "StartLimitIntervalSec=300",
        "StartLimitBurst=5",
        "",
        "[Service]",
        "Type=exec",
        "ExecStart=" + " ".join(_systemd_quote(arg) for arg in command),
    ]
    lines += [f"Environment={_systemd_quote(f'{name}={value}')}" for name, value in sorted(env.items())]
    lines += [
        # Optional: a headless server whose secrets are in the encrypted file can keep its passphrase here
        # (NANOCLAW_SECRETS_PASSPHRASE=..., a file only its owner can read); otherwise unlock them in Settings.
        "EnvironmentFile=-" + str(env_file).replace("%", "%%"),  # a path: systemd takes it whole, unquoted
        "Restart=on-failure",
        "RestartSec=10",
        "TimeoutStopSec=60",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ]
    return "\n".join(lines)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    tmp.replace(path)


def _running_elsewhere(paths: Paths, service_pid: int | None) -> int | None:
    """The pid of a NanoClaw already serving this home that is not the service (the window, a terminal)."""
    from nanoclaw_app.runfile import read_run_file

    record = read_run_file(paths)
    pid = record.get("pid") if record else None
    return pid if isinstance(pid, int) and pid != service_pid else None


def _nothing_to_remove(outcome: Outcome, path: Path) -> Outcome:
    outcome.say(f"There is no NanoClaw service to remove ({path} does not exist).")
    return outcome


def _say_removed(outcome: Outcome, path: Path, home: Path) -> None:
    outcome.say(f"The NanoClaw service is stopped and removed ({path}). Your data is kept in {home}.")


def _say_installed(outcome: Outcome, path: Path) -> bool:
    """Say whether the service file is there (both managers start their status with it); False ends the status."""
    if not path.exists():
        outcome.say(f"The NanoClaw service is not installed ({path} does not exist). "
                    "`nanoclaw service install` sets it up.")
        outcome.code = NOT_RUNNING
        return False
    outcome.say(f"Installed: yes ({path}).")
    return True


class SystemdUserService:
    """``~/.config/systemd/user/nanoclaw.service``, driven by ``systemctl --user``."""

    def __init__(self, paths: Paths, run: Runner, *, config_home: Path, user: str) -> None:
        self.paths = paths
        self.run = run
        self.user = user
        self.path = config_home / "systemd" / "user" / UNIT

    @classmethod
    def for_user(
        cls, paths: Paths, run: Runner = run_command, env: Mapping[str, str] | None = None
    ) -> SystemdUserService:
        """The current user's unit (``XDG_CONFIG_HOME`` when set, else ``~/.config``)."""
        env = os.environ if env is None else env
        config = env.get("XDG_CONFIG_HOME")
        config_home = Path(config) if config and Path(config).is_absolute() else Path.home() / ".config"
        return cls(paths, run, config_home=config_home, user=getpass.getuser())

    def _systemctl(self, *args: str) -> Completed:
        return self.run(["systemctl", "--user", *args])

    def _main_pid(self) -> int | None:
        shown = self._systemctl("show", UNIT, "--property=MainPID", "--value")
        value = shown.out.strip()
        return int(value) if shown.code == 0 and value.isdigit() and value != "0" else None

    def _linger(self) -> bool | None:
        """Whether the user's services run without a login (None when logind cannot say)."""
        shown = self.run(["loginctl", "show-user", self.user, "--property=Linger", "--value"])
        value = shown.out.strip()
        return {"yes": True, "no": False}.get(value) if shown.code == 0 else None

    def _linger_advice(self) -> str:
        return (f"It runs while you ({self.user}) are logged in. To keep it running after you log out, and start it "
                f"when the computer starts, turn on lingering once: `loginctl enable-linger {self.user}` (it may ask "
                "for an administrator's password), or run `nanoclaw service install --linger`.")

    def _unreachable(self, outcome: Outcome, reply: Completed, done: str) -> Outcome:
        outcome.say(f"{done}, but systemd could not be reached for your user ({reply.reason}). That happens in a "
                    "session without a systemd user manager (after `su`, in a container, or on a system without "
                    f"systemd). Log in as {self.user} directly (at the screen or over ssh) and run the command again.")
        outcome.code = 1
        return outcome

    def install(self, command: Sequence[str], env: Mapping[str, str], *, linger: bool = False) -> Outcome:
        """Write the unit, enable it, start it (unless another NanoClaw serves this home now) and explain lingering."""
        outcome = Outcome()
        env_file = self.paths.config / ENV_FILE
        _write_atomically(self.path, unit_text(command, env, env_file).encode("utf-8"))
        outcome.say(f"Wrote the service {self.path} (it runs `{' '.join(command)}`).")
        reload = self._systemctl("daemon-reload")
        if reload.code != 0:
            return self._unreachable(outcome, reload, "The service file is written")
        active = self._systemctl("is-active", UNIT).out.strip() == "active"
        other = _running_elsewhere(self.paths, self._main_pid() if active else None)
        if other is not None:
            step = self._systemctl("enable", UNIT)
            started = (f"It is enabled but not started: another NanoClaw (process {other}) serves the same data now. "
                       "Quit it, then run `systemctl --user start nanoclaw`; from the next login on the service "
                       "starts by itself.")
        elif active:
            step = self._systemctl("enable", UNIT)
            if step.code == 0:
                step = self._systemctl("restart", UNIT)
            started = "It was running and has restarted with this setup."
        else:
            step = self._systemctl("enable", "--now", UNIT)
            started = "It is enabled and running now."
        if step.code != 0:
            outcome.say(f"systemd could not start it: {step.reason}. See `journalctl --user -u nanoclaw` for why.")
            outcome.code = 1
            return outcome
        outcome.say(started)
        self._say_linger(outcome, linger)
        outcome.say("Open the app in a browser on this computer with the one-time link `nanoclaw open` prints.")
        outcome.say(f"Secrets kept in an encrypted file need unlocking in Settings after each start, unless you put "
                    f"NANOCLAW_SECRETS_PASSPHRASE=... in {env_file} (readable only by you: chmod 600).")
        return outcome

    def _say_linger(self, outcome: Outcome, linger: bool) -> None:
        state = self._linger()
        if state is True:
            outcome.say("Lingering is on: it keeps running when you log out and starts when the computer starts.")
            return
        if linger:
            done = self.run(["loginctl", "enable-linger", self.user])
            if done.code == 0:
                outcome.say("Lingering is now on: it keeps running when you log out and starts with the computer.")
                return
            outcome.say(f"Lingering could not be turned on ({done.reason}).")
        outcome.say(self._linger_advice())

    def uninstall(self) -> Outcome:
        """Stop and disable the service and remove its file; the data stays."""
        outcome = Outcome()
        if not self.path.exists():
            return _nothing_to_remove(outcome, self.path)
        self._systemctl("disable", "--now", UNIT)  # fails harmlessly when it was not enabled or not loaded
        self.path.unlink()
        reload = self._systemctl("daemon-reload")
        if reload.code != 0:
            return self._unreachable(outcome, reload, f"Removed {self.path}")
        _say_removed(outcome, self.path, self.paths.home)
        return outcome

    def status(self) -> Outcome:
        """Installed, enabled, running and lingering, in words; exit code 3 when it is not running."""
        outcome = Outcome()
        if not _say_installed(outcome, self.path):
            return outcome
        enabled = self._systemctl("is-enabled", UNIT)
        if enabled.code != 0 and not enabled.out.strip():
            return self._unreachable(outcome, enabled, "The service file is there")
        if enabled.out.strip() == "enabled":
            outcome.say("Starts by itself: yes (enabled).")
        else:
            outcome.say(f"Starts by itself: no ({enabled.out.strip() or 'disabled'}): "
                        "`systemctl --user enable nanoclaw` turns it on.")
        active = self._systemctl("is-active", UNIT).out.strip()
        if active == "active":
            pid = self._main_pid()
            outcome.say(f"Running: yes (process {pid})." if pid else "Running: yes.")
        else:
            outcome.say(f"Running: no ({active or 'inactive'}). `journalctl --user -u nanoclaw` shows why; "
                        "`systemctl --user start nanoclaw` starts it.")
            outcome.code = NOT_RUNNING
        linger = self._linger()
        if linger is True:
            outcome.say("Runs while you are logged out: yes (lingering is on).")
        elif linger is False:
            outcome.say("Runs while you are logged out: no. " + self._linger_advice())
        return outcome


# ---------------------------------------------------------------------------------------------------- macOS


class LaunchAgentService:
    """``~/Library/LaunchAgents/io.nanoclaw.service.plist``, driven by ``launchctl`` in the user's GUI domain."""

    def __init__(self, paths: Paths, run: Runner, *, home: Path, uid: int) -> None:
        self.paths = paths
        self.run = run
        self.path = home / "Library" / "LaunchAgents" / f"{AGENT_LABEL}.plist"
        self.domain = f"gui/{uid}"
        self.target = f"{self.domain}/{AGENT_LABEL}"

    @classmethod
    def for_user(cls, paths: Paths, run: Runner = run_command) -> LaunchAgentService:
        """The current user's agent."""
        return cls(paths, run, home=Path.home(), uid=os.getuid())

    def plist(self, command: Sequence[str], env: Mapping[str, str]) -> bytes:
        """The agent: started at login and whenever it exits with an error, its output next to the app's logs."""
        agent: dict[str, object] = {
            "Label": AGENT_LABEL,
            "ProgramArguments": list(command),
            "RunAtLoad": True,
            "KeepAlive": {"SuccessfulExit": False},
            "ThrottleInterval": 10,
            "StandardOutPath": str(self.paths.logs / "service.out.log"),
            "StandardErrorPath": str(self.paths.logs / "service.out.log"),
        }
        if env:
            agent["EnvironmentVariables"] = dict(env)
        return plistlib.dumps(agent)

    def _loaded(self) -> Completed:
        return self.run(["launchctl", "print", self.target])

    def install(self, command: Sequence[str], env: Mapping[str, str], *, linger: bool = False) -> Outcome:
        """Write the agent and load it now (reloading an older one)."""
        del linger  # launchd has no lingering: an agent runs while its user is logged in
        outcome = Outcome()
        if self._loaded().code == 0:
            self.run(["launchctl", "bootout", self.target])
        self.paths.logs.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_atomically(self.path, self.plist(command, env))
        outcome.say(f"Wrote the agent {self.path} (it runs `{' '.join(command)}`).")
        self.run(["launchctl", "enable", self.target])
        loaded = self.run(["launchctl", "bootstrap", self.domain, str(self.path)])
        if loaded.code != 0:
            outcome.say(f"launchd did not load it ({loaded.reason}); it starts at your next login. Loading needs a "
                        "login at the Mac's screen: an ssh session alone has no GUI domain.")
            outcome.code = 1
            return outcome
        outcome.say("It is running now and starts again at each login, and after a crash.")
        outcome.say("It runs while you are logged in. For a Mac that should answer with nobody at it, turn on "
                    "automatic login (System Settings > Users & Groups).")
        outcome.say("Open the app in a browser with the one-time link `nanoclaw open` prints.")
        return outcome

    def uninstall(self) -> Outcome:
        """Unload the agent and remove its file; the data stays."""
        outcome = Outcome()
        if not self.path.exists():
            return _nothing_to_remove(outcome, self.path)
        if self._loaded().code == 0:
            self.run(["launchctl", "bootout", self.target])
        self.path.unlink()
        _say_removed(outcome, self.path, self.paths.home)
        return outcome

    def status(self) -> Outcome:
        """Installed, loaded, running, in words; exit code 3 when it is not running."""
        outcome = Outcome()
        if not _say_installed(outcome, self.path):
            return outcome
        disabled = self.run(["launchctl", "print-disabled", self.domain]).out
        off = any(f'"{AGENT_LABEL}" => {word}' in disabled for word in ("disabled", "true"))
        outcome.say("Starts by itself: no (disabled in launchd)." if off else "Starts by itself: yes, at each login.")
        shown = self._loaded()
        fields: dict[str, str] = {}
        for line in shown.out.splitlines():  # "\tstate = running", "\tpid = 123"; the first of each is the job's own
            key, sep, value = line.partition(" = ")
            if sep and "{" not in value:
                fields.setdefault(key.strip(), value.strip())
        if shown.code == 0 and fields.get("state") == "running":
            pid = fields.get("pid")
            outcome.say(f"Running: yes (process {pid})." if pid else "Running: yes.")
        else:
            why = "not loaded" if shown.code != 0 else fields.get("state", "not running")
            outcome.say(f"Running: no ({why}). `nanoclaw service install` loads it again; its output is in "
                        f"{self.paths.logs / 'service.out.log'}.")
            outcome.code = NOT_RUNNING
        outcome.say("Runs while you are logged out: no (macOS runs a user's agents while they are logged in).")
        return outcome


# ---------------------------------------------------------------------------------------------------- the command


ServiceManager = SystemdUserService | LaunchAgentService


def manager(paths: Paths, *, platform: str | None = None, run: Runner = run_command) -> ServiceManager | None:
    """This OS's service manager, or None where ``nanoclaw service`` has none (Windows)."""
    platform = sys.platform if platform is None else platform
    if platform == "darwin":
        return LaunchAgentService.for_user(paths, run)
    if platform.startswith("linux"):
        return SystemdUserService.for_user(paths, run)
    return None


def service_main(action: str, *, linger: bool = False, platform: str | None = None, run: Runner = run_command) -> int:
    """``nanoclaw service ACTION``: print what happened in words; returns the exit code."""
    paths = Paths.from_env()
    found = manager(paths, platform=platform, run=run)
    if found is None:
        print("nanoclaw service: a background service is for Linux (systemd) and macOS (launchd). On Windows, turn on "
              "\"Start NanoClaw when I log in\" in Settings: it keeps running behind its tray icon.", file=sys.stderr)
        return 2
    if action == "install":
        outcome = found.install(service_command(), service_env(), linger=linger)
    elif action == "uninstall":
        outcome = found.uninstall()
    else:
        outcome = found.status()
    for line in outcome.lines:
        print(line)
    return outcome.code
