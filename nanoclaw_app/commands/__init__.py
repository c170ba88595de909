"""CLI subcommands for every action the app offers, one module per area, each calling the service layer.

Each module has ``register(sub)``, which adds its parser and sets ``run`` to ``async def (args, services) -> int``.
"""

from __future__ import annotations

import argparse
from types import ModuleType


def _areas() -> tuple[ModuleType, ...]:
    from nanoclaw_app.commands import (
        activity,
        agents,
        approvals,
        channels,
        chats,
        people,
        secrets,
        settings,
        tasks,
    )

    return (agents, channels, chats, people, approvals, tasks, activity, settings, secrets)


def register_all(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add every area's subcommands."""
    for area in _areas():
        area.register(sub)
