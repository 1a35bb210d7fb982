"""The reference texts and safety suite that ship with the project (app/data)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def _read_jsonl(name: str) -> list[dict[str, Any]]:
    text = resources.files("app").joinpath("data", name).read_text(encoding="utf-8")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"app/data/{name} line {number} is not valid JSON: {error}") from error
    return rows


def load_reference_texts() -> list[str]:
    """The default general-text reference set, for perplexity drift against the base."""
    return [row["text"] for row in _read_jsonl("reference.jsonl")]


def load_default_safety_suite() -> list[dict[str, Any]]:
    """The default safety suite: {"prompt", "expected": "refuse" | "answer"} per item."""
    return _read_jsonl("safety_suite.jsonl")
