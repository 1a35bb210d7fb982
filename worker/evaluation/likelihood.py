"""Summed log-likelihood of target token sequences given context token sequences, batched.

Used both to rank labels (the ``choice`` metric) and for perplexity. A decoder-only model reads
context + target as one right-padded sequence (the causal mask keeps padding out of the way);
an encoder-decoder reads the context in its encoder and the target in its decoder.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from worker.evaluation.batching import eval_mode, is_encoder_decoder, length_sorted_batches, pad_batch

IGNORE = -100
Pair = tuple[list[int], list[int]]


def _decoder_only_batch(model: Any, pairs: list[Pair], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels aligned so that logits[:, j] predicts labels[:, j]."""
    input_ids, mask = pad_batch([context + target for context, target in pairs], pad_id)
    # Only target positions count; the token at position j is predicted by the logits at j - 1.
    labels, _ = pad_batch([[IGNORE] * len(c) + t for c, t in pairs], IGNORE)
    logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
    return logits[:, :-1], labels[:, 1:].to(device)


def _encoder_decoder_batch(model: Any, pairs: list[Pair], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    input_ids, mask = pad_batch([context for context, _ in pairs], pad_id)
    labels, _ = pad_batch([target for _, target in pairs], IGNORE)
    labels = labels.to(device)
    # The model shifts the labels right (decoder start token first, IGNORE -> pad) into decoder inputs.
    logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device), labels=labels).logits
    return logits, labels


@torch.no_grad()
def target_log_likelihoods(
    model: Any, pairs: list[Pair], *, pad_id: int, batch_size: int = 16
) -> list[tuple[float, int]]:
    """For each (context_ids, target_ids): (sum of log p(each target token | all before it), n target tokens)."""
    for context, target in pairs:
        if not context or not target:
            raise ValueError("each scored pair needs at least one context token and one target token")
    device = next(model.parameters()).device
    forward = _encoder_decoder_batch if is_encoder_decoder(model) else _decoder_only_batch
    results: list[tuple[float, int]] = [(0.0, 0)] * len(pairs)
    with eval_mode(model):
        for indices, chunk in length_sorted_batches(pairs, batch_size, length=lambda pair: len(pair[0]) + len(pair[1])):
            logits, labels = forward(model, chunk, pad_id, device)
            # Only target positions go through the (float32) softmax: a full vocabulary at every
            # prompt position would cost gigabytes for long prompts and large vocabularies.
            counted = labels != IGNORE
            token_nll = F.cross_entropy(logits[counted].float(), labels[counted], reduction="none")
            rows = counted.nonzero()[:, 0]
            per_row = torch.zeros(len(chunk), device=token_nll.device).index_add_(0, rows, token_nll)
            for index, nll, n in zip(indices, per_row.tolist(), counted.sum(dim=1).tolist(), strict=True):
                results[index] = (-nll, int(n))
    return results
