"""Rendering a page: every page extends ``base.html`` and names its area (for the menu and its strings)."""

from __future__ import annotations

from typing import Any

from litestar.response import Template

NAV: tuple[tuple[str, str], ...] = (
    ("chat", "/chat"),
    ("agents", "/agents"),
    ("channels", "/channels"),
    ("chats", "/chats"),
    ("people", "/people"),
    ("approvals", "/approvals"),
    ("tasks", "/tasks"),
    ("activity", "/activity"),
    ("settings", "/settings"),
)
"""The menu, in order: (area, path). The label is the string ``<area>.title``."""


def page(template: str, area: str, *, status_code: int = 200, **context: Any) -> Template:
    """A full page; ``area`` selects the menu entry and which strings the page's script receives."""
    return Template(template_name=template, context={"area": area, **context}, status_code=status_code)
