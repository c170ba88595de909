"""CLI subcommands for every action the app offers, one module per area, each calling the service layer.

Each module has ``register(sub)``, which adds its parser and sets ``run`` to ``async def (args, services) -> int``.
"""

from __future__ import annotations

import argparse
from types import ModuleType

AREAS = ("agents", "channels", "chats", "people", "approvals", "tasks", "activity", "settings", "secrets",
         "credentials")
"""Each area's module and subcommand name, in help order. Named here so the CLI imports the areas (and their whole
service layer, ~0.7 s) only for a command that needs them, never to open the app or serve."""


def _areas() -> tuple[ModuleType, ...]:
    # Imported by name here (not with importlib) so that PyInstaller's analysis sees every area.
    from nanoclaw_app.commands import (
        activity,
        agents,
        approvals,
        channels,
        chats,
        credentials,
        people,
        secrets,
        settings,
        tasks,
    )

    return (agents, channels, chats, people, approvals, tasks, activity, settings, secrets, credentials)


def register_all(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add every area's subcommands."""
    for area in _areas():
        area.register(sub)
