"""General ability as answers: batched greedy answers to the suite's short questions and instructions
(the lineage's, else app/data/general_suite.jsonl); app.lineages.suites compares them with the base's."""

from __future__ import annotations

from typing import Any

from worker.evaluation.general_answers import answer_suite
from worker.evaluation.suites import runs


@runs("general_answers")
def run(model: Any, tokenizer: Any, records: list[dict]) -> dict[str, Any]:
    return answer_suite(model, tokenizer, records)
