"""The one error of engine setup: what went wrong and what the user can do, both in plain words."""

from __future__ import annotations

from nanoclaw_app.errors import ConfigError


class SetupFailed(ConfigError):
    """A setup step (download, installer, WSL, machine) did not work; retrying only helps once the fix is done."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}. To fix: {fix}")
        self.problem = problem
        self.fix = fix
