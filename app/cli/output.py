"""Output for people (aligned tables) and for scripts (``--json``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

Column = tuple[str, Callable[[dict], Any]]


def when(timestamp: int | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M")


def score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


CLIP = 40


def clip(text: str | None, width: int = CLIP) -> str | None:
    """Text for a table cell: one line, at most ``width`` characters."""
    if text is None:
        return None
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table(rows: Sequence[dict], columns: Sequence[Column], out: TextIO | None = None) -> None:
    out = out or sys.stdout  # looked up per call: tests and callers may swap sys.stdout
    grid = [[title.upper() for title, _ in columns]]
    grid += [[cell(pick(row)) for _, pick in columns] for row in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(columns))]
    out.writelines("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip() + "\n"
                   for line in grid)
    if not rows:
        out.write("(none)\n")


def fields(obj: dict, names: Sequence[Column], out: TextIO | None = None) -> None:
    out = out or sys.stdout  # looked up per call: tests and callers may swap sys.stdout
    """One object as 'name: value' lines."""
    width = max(len(title) for title, _ in names)
    out.writelines(f"{title.ljust(width)}  {cell(pick(obj))}\n" for title, pick in names)


def as_json(data: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout  # looked up per call: tests and callers may swap sys.stdout
    out.write(json.dumps(data, indent=2) + "\n")
