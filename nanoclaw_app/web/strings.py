"""User-facing text, from ``ui/strings/en/*.json`` (one file per area), so wording lives in one place.

Keys are ``<area>.<name>``; a file ``agents.json`` holds the ``agents.*`` keys. Templates call ``t("agents.title")``;
the page also gets every string as JSON for its script.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from nanoclaw_app.errors import ConfigError
from nanoclaw_app.paths import resource

log = logging.getLogger(__name__)


class Strings:
    """A flat, read-only map of text keys to text, with ``{name}`` placeholders."""

    def __init__(self, table: dict[str, str]) -> None:
        self._table = table

    @classmethod
    def load(cls, folder: Path | None = None) -> Strings:
        """Read every ``<area>.json`` in the strings folder (blocking: call once at app creation)."""
        folder = folder or resource("ui", "strings", "en")
        table: dict[str, str] = {}
        for file in sorted(folder.glob("*.json")):
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as err:
                raise ConfigError(f"cannot read UI strings {file.name}: {err}") from err
            if not isinstance(data, dict):
                raise ConfigError(f"UI strings {file.name} must hold a JSON object")
            for key, text in data.items():
                table[f"{file.stem}.{key}"] = str(text)
        return cls(table)

    def __call__(self, key: str, **values: Any) -> str:
        """The text for ``key`` with placeholders filled; a missing key shows itself (and is logged)."""
        text = self._table.get(key)
        if text is None:
            log.warning("missing UI string %r", key)
            return key
        return text.format(**values) if values else text

    def __contains__(self, key: object) -> bool:
        return key in self._table

    def area(self, prefix: str) -> dict[str, str]:
        """Every string of some areas (``"chat"`` or ``"chat,common"``), for a page's script."""
        areas = tuple(f"{p.strip()}." for p in prefix.split(","))
        return {k: v for k, v in self._table.items() if k.startswith(areas)}
