"""Perplexity on a set of plain texts: exp of the mean negative log-likelihood per token."""

from __future__ import annotations

import math
from typing import Any

from worker.evaluation.generation import is_encoder_decoder
from worker.evaluation.likelihood import target_log_likelihoods


def _start_token(tokenizer: Any) -> int:
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if start is None:
        raise ValueError("perplexity needs a bos or eos token to start each text from")
    return start


def _context_and_target(model: Any, tokenizer: Any, text: str) -> tuple[list[int], list[int]]:
    if is_encoder_decoder(model):
        # The decoder models the text on its own; the encoder sees an empty input.
        empty = tokenizer("")["input_ids"] or [tokenizer.eos_token_id]
        return list(empty), tokenizer(text)["input_ids"]
    ids = tokenizer(text)["input_ids"]
    # Start every text from bos so its first token is scored too, whatever the tokenizer adds.
    if ids and ids[0] == tokenizer.bos_token_id:
        return ids[:1], ids[1:]
    return [_start_token(tokenizer)], ids


def perplexity(model: Any, tokenizer: Any, texts: list[str], *, batch_size: int = 8) -> float:
    pairs = [_context_and_target(model, tokenizer, t) for t in texts if t.strip()]
    pairs = [(context, target) for context, target in pairs if target]
    if not pairs:
        raise ValueError("perplexity needs at least one non-empty text")
    scored = target_log_likelihoods(model, pairs, batch_size=batch_size)
    total_log_likelihood = sum(ll for ll, _ in scored)
    total_tokens = sum(n for _, n in scored)
    return math.exp(-total_log_likelihood / total_tokens)
