"""Greedy, batched generation for decoder-only and encoder-decoder models.

Decoder-only prompts are left padded so every prompt ends at the same position and the new
tokens line up; the attention mask (and the position ids generate derives from it) keeps the
padding from changing the result, so a batch yields what each prompt yields on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

# Extra tokens allowed beyond the longest reference, so a slightly longer answer is still
# seen in full (and judged wrong) rather than cut to look right.
MAX_NEW_TOKENS_MARGIN = 8


def is_encoder_decoder(model: Any) -> bool:
    return bool(getattr(model.config, "is_encoder_decoder", False))


def batches(items: list, size: int) -> Iterator[list]:
    if size < 1:
        raise ValueError(f"batch_size must be at least 1, got {size}")
    for start in range(0, len(items), size):
        yield items[start:start + size]


def start_token_id(tokenizer: Any) -> int:
    """The token a text starts from when it has none of its own (bos, else eos)."""
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if start is None:
        raise ValueError("the tokenizer has neither a bos nor an eos token to start a text from")
    return start


def prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    """A prompt's token ids exactly as training encodes them (no special tokens added).

    An empty prompt becomes the start token, so there is something to continue from.
    """
    return tokenizer(prompt, add_special_tokens=False)["input_ids"] or [start_token_id(tokenizer)]


def default_max_new_tokens(tokenizer: Any, references: list[str]) -> int:
    longest = max((len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in references), default=0)
    return longest + MAX_NEW_TOKENS_MARGIN


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
        raise ValueError("the tokenizer has neither a pad nor an eos token; batched generation needs one")
    return pad


@torch.no_grad()
def generate_texts(
    model: Any, tokenizer: Any, prompts: list[str], *, max_new_tokens: int, batch_size: int = 16
) -> list[str]:
    """Greedy continuation of each prompt (without the prompt), stopping at eos."""
    encoder_decoder = is_encoder_decoder(model)
    device = next(model.parameters()).device
    pad_id = pad_token_id(tokenizer)
    outputs: list[str] = []
    was_training = model.training
    model.eval()
    try:
        for chunk in batches([prompt_ids(tokenizer, p) for p in prompts], batch_size):
            # Encoder inputs are read as a whole, so they pad on the right like in training.
            input_ids, attention_mask = pad_batch(chunk, pad_id, left=not encoder_decoder)
            generated = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                do_sample=False,
                num_beams=1,
                max_new_tokens=max_new_tokens,
                pad_token_id=pad_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            # A decoder-only output repeats the (padded) prompt; an encoder-decoder's does not.
            new_tokens = generated if encoder_decoder else generated[:, input_ids.shape[1]:]
            outputs.extend(tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    finally:
        model.train(was_training)
    return outputs
