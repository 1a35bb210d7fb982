"""Records to token tensors: loss on the completion (+eos) only, for causal and seq2seq models."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from worker.prompt_completion import prompt_token_ids, to_prompt_completion

from .config import SettingsError

IGNORE = -100


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]  # causal: aligned with input_ids (IGNORE on the prompt); seq2seq: decoder targets


def encode(records, tokenizer, kind: str, max_length: int) -> list[Example]:
    examples = []
    for record in records:
        prompt, completion = to_prompt_completion(record, tokenizer)
        prompt_ids = prompt_token_ids(tokenizer, prompt)
        target_ids = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        if kind == "seq2seq":
            examples.append(Example(prompt_ids[:max_length], target_ids[:max_length]))
            continue
        # Keep the end of the prompt and the start of the completion when a record is too long.
        target_ids = target_ids[:max_length]
        prompt_ids = prompt_ids[max(0, len(prompt_ids) - (max_length - len(target_ids))) :]
        examples.append(Example(prompt_ids + target_ids, [IGNORE] * len(prompt_ids) + target_ids))
    if not any(label != IGNORE for ex in examples for label in ex.labels):
        raise SettingsError("no completion tokens to train on: the training records' completions are empty "
                            "or all truncated away", "training_file", code="invalid_data")
    return examples


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)


def collate(examples: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    input_ids = _pad([e.input_ids for e in examples], pad_id)
    attention_mask = _pad([[1] * len(e.input_ids) for e in examples], 0)
    labels = _pad([e.labels for e in examples], IGNORE)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def example_batches(examples: list[Example], batch_size: int, generator=None):
    """Yield lists of ``batch_size`` examples; shuffled by ``generator`` when given, so runs are reproducible."""
    order = torch.randperm(len(examples), generator=generator).tolist() if generator else range(len(examples))
    for start in range(0, len(order), batch_size):
        yield [examples[i] for i in order[start : start + batch_size]]


def batches(examples: list[Example], batch_size: int, pad_id: int, generator=None):
    """Yield collated batches of ``example_batches``."""
    for group in example_batches(examples, batch_size, generator):
        yield collate(group, pad_id)


def count_tokens(batch: dict[str, torch.Tensor], kind: str) -> int:
    """Tokens the model read: the sequence for causal LMs, encoder input plus targets for seq2seq."""
    seen = int(batch["attention_mask"].sum())
    return seen + int((batch["labels"] != IGNORE).sum()) if kind == "seq2seq" else seen
