"""Scoring a model on a task's held-out records with the task's metric."""

from __future__ import annotations

import time
from statistics import fmean
from typing import Any

from app.core.enums import METRICS
from worker.evaluation.batching import pad_token_id, prompt_ids
from worker.evaluation.general_answers import _printable as printable
from worker.evaluation.generation import default_max_new_tokens, generate_texts
from worker.evaluation.likelihood import target_log_likelihoods
from worker.evaluation.text_metrics import TEXT_METRICS
from worker.prompt_completion import shown_prompt, system_message, to_prompt_completion


def _label_ids(tokenizer: Any, label: str) -> list[int]:
    # Encoded as training encodes a completion, closing eos included, so a label that is a
    # prefix of another ("no" / "not sure") does not win just by being shorter.
    return tokenizer(label, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


def rank_labels(
    model: Any, tokenizer: Any, prompts: list[str], labels: list[str], *, batch_size: int = 16
) -> list[str]:
    """For each prompt, the label with the highest summed log-likelihood (ties: the earlier label)."""
    if tokenizer.eos_token_id is None:
        raise ValueError("choice scoring needs a tokenizer with an eos token")
    targets = [_label_ids(tokenizer, label) for label in labels]
    pairs = [(prompt_ids(tokenizer, p), target) for p in prompts for target in targets]
    scored = target_log_likelihoods(model, pairs, pad_id=pad_token_id(tokenizer), batch_size=batch_size)
    scores = [ll for ll, _ in scored]
    best = []
    for row in range(len(prompts)):
        row_scores = scores[row * len(labels):(row + 1) * len(labels)]
        best.append(labels[max(range(len(labels)), key=lambda k: (row_scores[k], -k))])
    return best


def score_task(
    model: Any,
    tokenizer: Any,
    records: list[dict],
    *,
    metric: str = "exact_match",
    labels: list[str] | None = None,
    batch_size: int = 16,
    max_new_tokens: int | None = None,
) -> dict:
    """Mean per-record score in [0, 1]: {"score", "n", "seconds", "examples"}; ``examples``: per record, its
    prompt as written (and system message, if any), the reference, the model's answer and its score (what a
    matrix cell rests on).

    Records are rendered with ``worker.prompt_completion.to_prompt_completion``, as training renders them.
    ``labels`` (choice only) default to the distinct completions, sorted.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    if not records:
        raise ValueError("no records to score")
    started = time.perf_counter()
    pairs = [to_prompt_completion(r, tokenizer) for r in records]
    prompts = [p for p, _ in pairs]
    references = [c for _, c in pairs]
    if metric == "choice":
        choices = list(labels) if labels else sorted(set(references))
        # Labels and completions are matched without surrounding whitespace (" yes" is "yes").
        unknown = sorted({r.strip() for r in references} - {c.strip() for c in choices})
        if unknown:
            raise ValueError(f"completions not among the labels: {unknown[:5]}")
        answers = rank_labels(model, tokenizer, prompts, choices, batch_size=batch_size)
        per_record = [float(p.strip() == r.strip()) for p, r in zip(answers, references, strict=True)]
    else:
        limit = max_new_tokens or default_max_new_tokens(tokenizer, references)
        answers = generate_texts(model, tokenizer, prompts, max_new_tokens=limit, batch_size=batch_size)
        per_record = [TEXT_METRICS[metric](g, r) for g, r in zip(answers, references, strict=True)]
    examples = [{"prompt": shown_prompt(record), "system": system_message(record), "reference": reference,
                 "answer": printable(answer), "score": score}
                for record, reference, answer, score in zip(records, references, answers, per_record, strict=True)]
    return {"score": fmean(per_record), "n": len(records), "seconds": time.perf_counter() - started,
            "examples": examples}
