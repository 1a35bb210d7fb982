"""A few-step trainer that gives a tiny model known behaviour, so evaluation results are predictable."""

from __future__ import annotations

import torch


def teach(model, tokenizer, pairs: list[tuple[str, str]], *, steps: int = 150, lr: float = 3e-3):
    """Fit a decoder-only model to answer each prompt with its completion (then eos)."""
    rows = []
    for prompt, completion in pairs:
        context = tokenizer(prompt)["input_ids"]
        target = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append((context + target, [-100] * len(context) + target))
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.tensor([ids + [tokenizer.pad_token_id] * (width - len(ids)) for ids, _ in rows])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows])
    mask = (torch.arange(width)[None, :] < torch.tensor([len(ids) for ids, _ in rows])[:, None]).long()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    torch.manual_seed(0)
    for _ in range(steps):
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return loss.item()
