"""General ability as answers: batched greedy answers to the suite's short questions and instructions
(the lineage's, else app/data/general_suite.jsonl); app.lineages.suites compares them with the base's."""

from __future__ import annotations

from typing import Any

from app.lineages.suites import GENERAL_ANSWERS
from worker.evaluation.general_answers import answer_suite
from worker.evaluation.suites import runs


@runs(GENERAL_ANSWERS.name)
def run(model: Any, tokenizer: Any, records: list[dict], baseline: dict | None) -> dict[str, Any]:
    # general_kept reads only the items the base answered right, so a later version is asked those alone:
    # on a real model that halves the suite's cost.
    right = (baseline or {}).get("right")
    asked = [i for i, ok in enumerate(right) if ok] if right is not None and len(right) == len(records) else None
    return answer_suite(model, tokenizer, records, asked=asked)
