"""Perplexity on a set of plain texts: exp of the mean negative log-likelihood per token."""

from __future__ import annotations

import math
from typing import Any

from worker.evaluation.batching import pad_token_id, start_token_id
from worker.evaluation.likelihood import target_log_likelihoods


def perplexity(model: Any, tokenizer: Any, texts: list[str], *, batch_size: int = 8) -> float:
    """Every token of every text is scored, each text starting from the start token (bos, else eos).

    An encoder-decoder model gets the start token as its whole encoder input and models the
    text in its decoder, so the number is comparable between versions of one lineage.
    """
    start = start_token_id(tokenizer)
    targets = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    pairs = [([start], ids) for ids in targets if ids]
    if not pairs:
        raise ValueError("perplexity needs at least one non-empty text")
    scored = target_log_likelihoods(model, pairs, pad_id=pad_token_id(tokenizer), batch_size=batch_size)
    total_log_likelihood = sum(ll for ll, _ in scored)
    total_tokens = sum(n for _, n in scored)
    mean_nll = -total_log_likelihood / total_tokens
    # A diverged model can score beyond float range: report inf, the caller decides what it means.
    return math.exp(mean_nll) if math.isfinite(mean_nll) and mean_nll < 700 else math.inf
