"""Turning texts into padded, length-sorted batches of token ids, shared by generation and scoring."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from worker.prompt_completion import prompt_token_ids


def is_encoder_decoder(model: Any) -> bool:
    return bool(getattr(model.config, "is_encoder_decoder", False))


def length_sorted_batches(
    items: list, size: int, length: Callable[[Any], int] = len
) -> Iterator[tuple[list[int], list]]:
    """Batches of (original indices, items), shortest first, so each batch carries little padding."""
    if size < 1:
        raise ValueError(f"batch_size must be at least 1, got {size}")
    order = sorted(range(len(items)), key=lambda i: length(items[i]))
    for start in range(0, len(order), size):
        indices = order[start:start + size]
        yield indices, [items[i] for i in indices]


def start_token_id(tokenizer: Any) -> int:
    """The token a text starts from when it has none of its own (bos, else eos)."""
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if start is None:
        raise ValueError("the tokenizer has neither a bos nor an eos token to start a text from")
    return start


def prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    """A prompt's token ids exactly as training encodes them (``worker.prompt_completion.prompt_token_ids``).

    An empty prompt becomes the start token, so there is something to continue from.
    """
    return prompt_token_ids(tokenizer, prompt) or [start_token_id(tokenizer)]


def pad_batch(sequences: list[list[int]], pad_id: int, *, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token id lists to one width: (input_ids, attention_mask)."""
    width = max(len(s) for s in sequences)
    rows, masks = [], []
    for s in sequences:
        padding = [pad_id] * (width - len(s))
        rows.append(padding + s if left else s + padding)
        masks.append([0] * len(padding) + [1] * len(s) if left else [1] * len(s) + [0] * len(padding))
    return torch.tensor(rows, dtype=torch.long), torch.tensor(masks, dtype=torch.long)


def pad_token_id(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ValueError("the tokenizer has neither a pad nor an eos token; padding a batch needs one")
    return pad


@contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """Evaluate without dropout, then hand the model back in the mode it came in (it may be mid-training)."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
