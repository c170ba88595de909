"""Where things live: the home (data) dir, the config dir, logs, and resources inside the package or the bundle."""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "nanoclaw"
HOME_ENV = "NANOCLAW_HOME"
CONFIG_ENV = "NANOCLAW_CONFIG_DIR"


def resource_root() -> Path:
    """Return the folder that holds ``nanoclaw_app/``, ``ui/`` and ``skills/``, from source or frozen.

    PyInstaller unpacks data files under ``sys._MEIPASS``; from source they sit beside the package.
    """
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen is not None:
        return Path(frozen)
    return Path(__file__).resolve().parent.parent


def resource(*parts: str) -> Path:
    """Return a path to a shipped resource (templates, migrations, skills) that works from source and frozen."""
    return resource_root().joinpath(*parts)


@dataclass(frozen=True, slots=True)
class Paths:
    """Every folder the host writes to, derived from one home dir."""

    home: Path
    config: Path

    @classmethod
    def from_env(cls) -> Paths:
        """Use ``NANOCLAW_HOME`` / ``NANOCLAW_CONFIG_DIR`` when set, else the platform's user dirs."""
        home_env = os.environ.get(HOME_ENV)
        home = Path(home_env) if home_env else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
        config_env = os.environ.get(CONFIG_ENV)
        if config_env:
            config = Path(config_env)
        elif home_env:
            # An explicit home (tests, portable installs) keeps its config beside it, never in the real user dir.
            config = home.parent / f"{home.name}-config"
        else:
            config = Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))
        return cls(home=home.resolve(), config=config.resolve())

    @property
    def central_db(self) -> Path:
        """The central database file."""
        return self.home / "nanoclaw.db"

    @property
    def sessions(self) -> Path:
        """Root of every session folder."""
        return self.home / "sessions"

    @property
    def agents(self) -> Path:
        """Root of every agent workspace."""
        return self.home / "agents"

    @property
    def channels(self) -> Path:
        """Root of channel state (WhatsApp device DB, ...)."""
        return self.home / "channels"

    @property
    def logs(self) -> Path:
        """Host log folder."""
        return self.home / "logs"

    @property
    def run(self) -> Path:
        """Sockets the host serves or starts (model gateway, Podman service).

        Unix socket paths are limited to about 100 bytes, so a deep home dir falls back to a short folder in the
        system temp dir, named after the home so two installs never share one.
        """
        preferred = self.home / "run"
        if len(str(preferred / "gateway.sock").encode()) <= 100:
            return preferred
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"nanoclaw-{digest}"

    @property
    def container_logs(self) -> Path:
        """Container output, one file per session, in a host-only folder.

        A log inside a folder the container can write could be swapped for a link and make the host append to (or
        show) any file of the user's.
        """
        return self.logs / "containers"

    def container_log(self, session_id: str) -> Path:
        """The log file of one session's containers (appended to by every container of the session)."""
        return self.container_logs / f"{session_id}.log"

    @property
    def settings_file(self) -> Path:
        """User settings (JSON). Never holds secrets."""
        return self.config / "settings.json"

    @property
    def mount_allowlist(self) -> Path:
        """Mount allowlist; outside the data dir and never mounted into a container."""
        return self.config / "mount-allowlist.json"

    def ensure(self) -> None:
        """Create the folders the host needs, private to the user."""
        for folder in (self.home, self.sessions, self.agents, self.channels, self.logs, self.container_logs,
                       self.config, self.run):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
