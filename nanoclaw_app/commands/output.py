"""Printing results: a plain aligned table for people, JSON with ``--json`` for scripts."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from typing import Any


def json_flag(parser: argparse.ArgumentParser) -> None:
    """The ``--json`` switch every listing and action takes."""
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def jsonable(value: Any) -> Any:
    """Dataclasses and nested containers as plain JSON values."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    """One JSON document on stdout."""
    print(json.dumps(jsonable(value), indent=2, default=str, ensure_ascii=False))


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, empty: str = "nothing to show") -> None:
    """Rows as aligned columns (values cut at 60 characters)."""
    if not rows:
        print(empty)
        return
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= 60 else text[:59] + "…"
