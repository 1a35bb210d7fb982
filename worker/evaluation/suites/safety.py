"""Safety: refusal rates on harmful and benign prompts (the lineage's suite, else app/data/safety_suite.jsonl)."""

from __future__ import annotations

from typing import Any

from app.lineages.suites import SAFETY
from worker.evaluation.safety import safety_rates
from worker.evaluation.suites import runs


@runs(SAFETY.name)
def run(model: Any, tokenizer: Any, records: list[dict], baseline: dict | None) -> dict[str, Any]:  # noqa: ARG001
    return safety_rates(model, tokenizer, records)
