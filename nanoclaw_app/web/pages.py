"""Rendering a page: every page extends ``base.html`` and names its area (for the menu and its strings)."""

from __future__ import annotations

from typing import Any

from litestar.response import Template

from nanoclaw_app.channels import registry

NAV: tuple[tuple[str, str], ...] = (
    ("chat", "/chat"),
    ("agents", "/agents"),
    ("channels", "/channels"),
    ("chats", "/chats"),
    ("people", "/people"),
    ("approvals", "/approvals"),
    ("credentials", "/credentials"),
    ("tasks", "/tasks"),
    ("activity", "/activity"),
    ("settings", "/settings"),
)
"""The menu, in order: (area, path). The label is the string ``<area>.title``."""

CHANNEL_PAGES = frozenset({"channels", "wizard"})
"""The pages that mount the channels' own page modules, which read the generic ``channels.*`` strings and their
channel's own (``ui/strings/en/<name>.json``): a new channel's strings reach them without touching a template."""


def string_areas(area: str) -> str:
    """The string areas a page's script receives (``Strings.area``): shared, its own, and the channels' where needed."""
    areas = ["common", area]
    if area in CHANNEL_PAGES:
        areas += ["channels", *(channel.name for channel in registry.CHANNELS)]
    return ",".join(dict.fromkeys(areas))


def page(template: str, area: str, *, status_code: int = 200, **context: Any) -> Template:
    """A full page; ``area`` selects the menu entry and which strings the page's script receives."""
    return Template(template_name=template, context={"area": area, "string_areas": string_areas(area), **context},
                    status_code=status_code)
