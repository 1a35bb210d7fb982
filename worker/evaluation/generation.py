"""Greedy, batched generation for decoder-only and encoder-decoder models.

Decoder-only prompts are left padded so every prompt ends at the same position and the new
tokens line up; the attention mask (and the position ids generate derives from it) keeps the
padding from changing the result, so a batch yields what each prompt yields on its own.
"""

from __future__ import annotations

from typing import Any

import torch

from worker.evaluation.batching import (
    eval_mode,
    is_encoder_decoder,
    length_sorted_batches,
    pad_batch,
    pad_token_id,
    prompt_ids,
)

# Extra tokens allowed beyond the longest reference, so a slightly longer answer is still
# seen in full (and judged wrong) rather than cut to look right.
MAX_NEW_TOKENS_MARGIN = 8


def default_max_new_tokens(tokenizer: Any, references: list[str]) -> int:
    longest = max((len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in references), default=0)
    return longest + MAX_NEW_TOKENS_MARGIN


def fit_context(model: Any, ids: list[int], max_new_tokens: int) -> list[int]:
    """Keep the end of a decoder-only prompt when prompt + answer would pass the model's context
    length (as training keeps the end of a long prompt); learned position tables fail past it."""
    context = getattr(model.config, "max_position_embeddings", None)
    if is_encoder_decoder(model) or not context:
        return ids
    keep = context - max_new_tokens
    if keep < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens} leaves no room for a prompt in a {context}-token context")
    return ids[-keep:]


@torch.no_grad()
def generate_texts(
    model: Any, tokenizer: Any, prompts: list[str], *, max_new_tokens: int, batch_size: int = 16
) -> list[str]:
    """Greedy continuation of each prompt (without the prompt), stopping at eos."""
    encoder_decoder = is_encoder_decoder(model)
    device = next(model.parameters()).device
    pad_id = pad_token_id(tokenizer)
    outputs: list[str] = [""] * len(prompts)
    with eval_mode(model):
        encoded = [fit_context(model, prompt_ids(tokenizer, p), max_new_tokens) for p in prompts]
        for indices, chunk in length_sorted_batches(encoded, batch_size):
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
            for index, text in zip(indices, tokenizer.batch_decode(new_tokens, skip_special_tokens=True), strict=True):
                outputs[index] = text
    return outputs
