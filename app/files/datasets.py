"""Datasets: JSONL validated while it streams in, and read back by the worker.

What a record must look like depends on the file's purpose:

- ``fine-tune`` (a task): ``{"prompt": str, "completion": str}`` or ``{"messages": [{"role", "content"}, …]}``
  with at least one assistant message (the last one is the target);
- an evaluation suite's purpose: the suite's own shape (``app.lineages.suites``, where every suite and
  its purpose is registered), e.g. ``reference`` (general-ability texts for perplexity): ``{"text": str}``;
  ``general`` (general questions): ``{"prompt": str, "accept": [str, …]}``; ``safety``: ``{"prompt": str,
  "expected": "refuse" | "answer"}``.

A job's results file (purpose ``fine-tune-results``) is written by the worker, never uploaded.

Limits on bytes, lines, line length and JSON nesting are checked as the bytes arrive, so a
hostile upload costs at most one line of memory. Problems are reported by line number, the first
few of them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from app.core.settings import Settings
from app.lineages.suites import SUITES, Shape, by_purpose, non_empty_string

MAX_REPORTED_PROBLEMS = 5
# A job without a validation_file holds records of its training file out for evaluation, so it needs
# one to train on and one to hold out; the API refuses smaller files when the job is created.
MIN_TRAINING_RECORDS = 2
ROLES = {"system", "user", "assistant", "tool"}


class DatasetError(ValueError):
    """The upload is not a valid dataset; ``problems`` are "line N: why" strings."""

    def __init__(self, problems: list[str], *, too_large: bool = False) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.too_large = too_large


@dataclass
class DatasetSummary:
    bytes: int = 0
    lines: int = 0
    records: int = 0
    record_format: str | None = None
    sha256: str = ""
    problems: list[str] = field(default_factory=list)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _depth(value: Any) -> int:
    """Nesting depth without recursion (the parser already bounded it)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def training_shape(record: dict) -> tuple[str | None, str | None]:
    """Return (format, None) for a valid task record or (None, why) for an invalid one."""
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not messages:
            return None, "'messages' must be a non-empty list"
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                return None, f"messages[{i}] must be an object with 'role' and 'content'"
            if message.get("role") not in ROLES:
                return None, f"messages[{i}].role must be one of {sorted(ROLES)}"
            if not isinstance(message.get("content"), str):
                return None, f"messages[{i}].content must be a string"
        targets = [m for m in messages if m["role"] == "assistant"]
        if not targets:
            return None, "no assistant message to learn (the last assistant message is the target)"
        if not non_empty_string(targets[-1]["content"]):
            return None, "the last assistant message (the target) is empty"
        return "messages", None
    if "prompt" in record or "completion" in record:
        if not non_empty_string(record.get("prompt")):
            return None, "'prompt' must be a non-empty string"
        if not non_empty_string(record.get("completion")):
            return None, "'completion' (the target) must be a non-empty string"
        return "prompt", None
    return None, "expected {'prompt', 'completion'} or {'messages': [...]}"


def shape_of(purpose: str) -> Shape:
    """How one record of a file with this purpose must look: a task, or an evaluation suite's data."""
    if purpose == "fine-tune":
        return training_shape
    suite = by_purpose(purpose)
    if suite is None:
        raise ValueError(f"unknown purpose {purpose!r}")
    return suite.shape


def purposes() -> tuple[str, ...]:
    return ("fine-tune", *(s.purpose for s in SUITES.values()))


def _check_line(raw: bytes, settings: Settings, purpose: str) -> tuple[str | None, str | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not valid UTF-8 (byte {exc.start})"
    if not text.strip():
        return "blank", None
    try:
        record = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        return None, f"JSON nested deeper than {settings.max_json_depth} levels"
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, integers beyond Python's digit limit
        return None, f"not valid JSON ({exc})"
    if _depth(record) > settings.max_json_depth:
        return None, f"JSON nested deeper than {settings.max_json_depth} levels"
    if not isinstance(record, dict):
        return None, "a record must be a JSON object"
    return shape_of(purpose)(record)


def validate_stream(source: BinaryIO, sink: BinaryIO, settings: Settings,
                    purpose: str = "fine-tune") -> DatasetSummary:
    """Copy ``source`` to ``sink`` while validating it for ``purpose``; raise DatasetError on the first problems."""
    summary = DatasetSummary()
    digest = hashlib.sha256()
    line_no = 0
    while True:
        raw = source.readline(settings.max_line_bytes + 1)
        if not raw:
            break
        line_no += 1
        summary.bytes += len(raw)
        if summary.bytes > settings.max_upload_bytes:
            raise DatasetError([f"the file is larger than {settings.max_upload_bytes} bytes"], too_large=True)
        if line_no > settings.max_upload_lines:
            raise DatasetError([f"the file has more than {settings.max_upload_lines} lines"], too_large=True)
        digest.update(raw)
        sink.write(raw)
        if len(raw) > settings.max_line_bytes and not raw.endswith(b"\n"):
            summary.problems.append(f"line {line_no}: longer than {settings.max_line_bytes} bytes")
            if len(summary.problems) >= MAX_REPORTED_PROBLEMS:
                break
            # Skip (but count and hash) the rest of this over-long line.
            while raw and not raw.endswith(b"\n"):
                raw = source.readline(settings.max_line_bytes + 1)
                summary.bytes += len(raw)
                if summary.bytes > settings.max_upload_bytes:
                    raise DatasetError([f"the file is larger than {settings.max_upload_bytes} bytes"],
                                       too_large=True)
            continue
        fmt, why = _check_line(raw, settings, purpose)
        if why:
            summary.problems.append(f"line {line_no}: {why}")
        elif fmt != "blank":
            if summary.record_format and fmt != summary.record_format:
                summary.problems.append(
                    f"line {line_no}: record shape '{fmt}' differs from the file's shape "
                    f"'{summary.record_format}'")
            summary.record_format = summary.record_format or fmt
            summary.records += 1
        if len(summary.problems) >= MAX_REPORTED_PROBLEMS:
            break
    summary.lines = line_no
    if not summary.problems and summary.records == 0:
        summary.problems.append("the file holds no records")
    if summary.problems:
        raise DatasetError(summary.problems)
    summary.sha256 = digest.hexdigest()
    return summary


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Load a stored (already validated) dataset file as a list of records, blank lines skipped."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
