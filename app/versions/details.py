"""A version's details that a summary leaves out, a page at a time: the held-out examples behind an accuracy-matrix
cell beside the previous version's answers, every answer of a suite beside the base's, and the retention kept in
each matrix."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.db.tables import Evaluation
from app.core.errors import NotFound, Unprocessable
from app.lineages.service import get_version
from app.lineages.suites import SUITES

BASE_VERSION = 1  # the lineage's base: what every version's suite results are compared with


def _page(items: list[dict[str, Any]], key: str, after: str | None, limit: int) -> tuple[list[dict], bool]:
    start = 0
    if after is not None:
        keys = [str(item[key]) for item in items]
        if after not in keys:
            raise NotFound(f"No item {after!r} to page after", param="after", code="cursor_not_found")
        start = keys.index(after) + 1
    return items[start:start + limit], start + limit < len(items)


def suite_answers(session: Session, model_id: str, version: int, suite: str, after: str | None,
                  limit: int) -> tuple[list[dict], bool]:
    """One suite's per-item answers on the version, with the base's answer to the same item."""
    if suite not in SUITES:
        raise Unprocessable(f"No suite named {suite!r}; suites: {', '.join(SUITES)}", param="suite",
                            code="unknown_suite")
    result = (get_version(session, model_id, version).metrics or {}).get(suite) or {}
    if not isinstance(result.get("prompts"), list):
        raise NotFound(f"v{version} of '{model_id}' has no per-item answers of suite {suite!r}", param="suite",
                       code="no_answers")
    base = (get_version(session, model_id, BASE_VERSION).metrics or {}).get(suite) or {}
    same_items = base.get("prompts") == result["prompts"]

    def pick(values: Any, i: int) -> Any:
        return values[i] if isinstance(values, list) and i < len(values) else None

    items = [{"object": "model.answer", "index": i, "prompt": prompt, "answer": pick(result.get("answers"), i),
              "right": pick(result.get("right"), i),
              "base_answer": pick(base.get("answers"), i) if same_items else None,
              "base_right": pick(base.get("right"), i) if same_items else None}
             for i, prompt in enumerate(result["prompts"])]
    return _page(items, "index", after, limit)


def retention_matrices(session: Session, model_id: str, version: int, after: str | None,
                       limit: int) -> tuple[list[dict], bool]:
    """What the strategy kept in each matrix it trained (adaptive_svd: shape, ratio, kept ranks)."""
    matrices = (get_version(session, model_id, version).retention or {}).get("matrices") or {}
    items = [{"object": "model.retention.matrix", "name": name, **details} for name, details in matrices.items()]
    return _page(items, "name", after, limit)


def _cell(session: Session, model_id: str, version: int, task: str) -> Evaluation | None:
    return session.scalar(select(Evaluation).where(Evaluation.model_id == model_id, Evaluation.version == version,
                                                   Evaluation.task_name == task))


def _change(before: float | None, now: float) -> str | None:
    if before is None or before == now:
        return None
    return "gained" if now > before else "lost"


def task_examples(session: Session, model_id: str, version: int, task: str, changed_only: bool, after: str | None,
                  limit: int) -> tuple[list[dict], bool]:
    """The held-out examples behind the version's score on ``task`` (a cell of the accuracy matrix), each with
    the answer of the version before it (its parent) beside this one's: what it forgot, exactly."""
    row = get_version(session, model_id, version)
    cell = _cell(session, model_id, version, task)
    if cell is None:
        raise NotFound(f"v{version} of '{model_id}' was not evaluated on task {task!r}", param="task",
                       code="cell_not_found")
    if cell.examples is None:
        raise NotFound(f"v{version} of '{model_id}' was scored on {task!r} before examples were kept (Sculpt "
                       "0012); only its score is known", param="task", code="no_examples")
    parent = row.parent_version
    before = _cell(session, model_id, parent, task) if parent is not None else None
    previous = before.examples if before is not None and before.examples is not None else []
    items = []
    for i, example in enumerate(cell.examples):
        earlier = previous[i] if i < len(previous) and previous[i]["prompt"] == example["prompt"] else None
        items.append({"object": "model.example", "index": i, **example,
                      "previous_version": parent if earlier else None,
                      "previous_answer": earlier["answer"] if earlier else None,
                      "previous_score": earlier["score"] if earlier else None,
                      "change": _change(earlier["score"] if earlier else None, example["score"])})
    if changed_only:
        items = [item for item in items if item["change"]]
    return _page(items, "index", after, limit)
