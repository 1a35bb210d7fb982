"""General ability: perplexity on reference texts (the lineage's, else app/data/reference.jsonl)."""

from __future__ import annotations

import math
from typing import Any

from app.lineages.suites import GENERAL
from worker.errors import JobFailed
from worker.evaluation.perplexity import perplexity
from worker.evaluation.suites import runs


@runs(GENERAL.name)
def run(model: Any, tokenizer: Any, records: list[dict], baseline: dict | None) -> dict[str, Any]:  # noqa: ARG001
    ppl = perplexity(model, tokenizer, [r["text"] for r in records])
    if not math.isfinite(ppl):
        raise JobFailed("nan_loss", "the trained model's outputs are no longer finite (reference perplexity "
                        "overflows): training diverged. Try a lower learning rate or learning_rate_multiplier")
    return {"perplexity": ppl}
