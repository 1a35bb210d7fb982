"""Summed log-likelihood of target token sequences given context token sequences, batched.

Used both to rank labels (the ``choice`` metric) and for perplexity. A decoder-only model reads
context + target as one right-padded sequence; an encoder-decoder reads the context in its
encoder and the target in its decoder.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from worker.evaluation.generation import batches, is_encoder_decoder

IGNORE = -100


def _right_pad(sequences: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in sequences)
    return torch.tensor([s + [value] * (width - len(s)) for s in sequences], dtype=torch.long)


def _decoder_only_batch(model: Any, pairs: list[tuple[list[int], list[int]]], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels aligned so that logits[:, j] predicts labels[:, j]."""
    sequences = [context + target for context, target in pairs]
    input_ids = _right_pad(sequences, 0).to(device)
    mask = _right_pad([[1] * len(s) for s in sequences], 0).to(device)
    # Only target positions count; the token at position j is predicted by logits at j - 1.
    labels = _right_pad([[IGNORE] * len(c) + t for c, t in pairs], IGNORE).to(device)
    logits = model(input_ids=input_ids, attention_mask=mask).logits
    return logits[:, :-1], labels[:, 1:]


def _encoder_decoder_batch(model: Any, pairs: list[tuple[list[int], list[int]]], device) -> tuple[torch.Tensor, torch.Tensor]:
    contexts = [context for context, _ in pairs]
    input_ids = _right_pad(contexts, model.config.pad_token_id or 0).to(device)
    mask = _right_pad([[1] * len(c) for c in contexts], 0).to(device)
    labels = _right_pad([target for _, target in pairs], IGNORE).to(device)
    # The model shifts labels right (decoder start token, IGNORE -> pad) into decoder inputs.
    logits = model(input_ids=input_ids, attention_mask=mask, labels=labels).logits
    return logits, labels


@torch.no_grad()
def target_log_likelihoods(
    model: Any, pairs: list[tuple[list[int], list[int]]], *, batch_size: int = 16
) -> list[tuple[float, int]]:
    """For each (context_ids, target_ids): (sum of log p(target token | everything before), n target tokens)."""
    for context, target in pairs:
        if not target:
            raise ValueError("a target to score must have at least one token")
        if not context and not is_encoder_decoder(model):
            raise ValueError("a decoder-only model needs at least one context token to predict the first target token")
    device = next(model.parameters()).device
    forward = _encoder_decoder_batch if is_encoder_decoder(model) else _decoder_only_batch
    results: list[tuple[float, int]] = []
    was_training = model.training
    model.eval()
    try:
        for chunk in batches(pairs, batch_size):
            logits, labels = forward(model, chunk, device)
            token_nll = F.cross_entropy(
                logits.float().transpose(1, 2), labels, ignore_index=IGNORE, reduction="none"
            )
            counted = labels != IGNORE
            for nll, count in zip(token_nll.sum(dim=1).tolist(), counted.sum(dim=1).tolist()):
                results.append((-nll, int(count)))
    finally:
        model.train(was_training)
    return results
