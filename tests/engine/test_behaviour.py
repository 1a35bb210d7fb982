"""Learning task B with adaptive_svd disturbs what the model does on task A less than full FT does."""

import copy

import torch

from worker.engine import TrainConfig, train_task
from worker.engine.data import batches, encode
from worker.tiny import build_tiny_causal_lm

from .conftest import fact_records

# The stated margin: adaptive_svd must move A's next-token distributions at most half as much as full.
MARGIN = 0.5
# And it must still learn B: its loss on B falls by at least this fraction, so freezing everything fails.
MIN_LOSS_DROP = 0.25


def mean_kl(before, after, tokenizer, records) -> float:
    """Mean KL(before || after) of next-token distributions over every real position of the records."""
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in batches(encode(records, tokenizer, "causal", 64), 16, tokenizer.pad_token_id):
            batch = {name: tensor.to(before.device) for name, tensor in batch.items()}
            mask = batch["attention_mask"].bool()
            inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
            p = torch.log_softmax(before(**inputs).logits, -1)[mask]
            q = torch.log_softmax(after(**inputs).logits, -1)[mask]
            total += float(torch.nn.functional.kl_div(q, p, log_target=True, reduction="sum"))
            count += int(mask.sum())
    return total / count


def test_adaptive_svd_changes_task_a_outputs_less_than_full():
    task_a, task_b = fact_records("a", 16, seed=0), fact_records("b", 16, seed=1)
    model, tokenizer = build_tiny_causal_lm()
    learned_a = train_task(
        model, tokenizer, task_a, TrainConfig(strategy="full", n_epochs=40, learning_rate=1e-2)
    ).model

    kl = {}
    for strategy in ("full", "adaptive_svd"):
        losses = []
        config = TrainConfig(strategy=strategy, n_epochs=20, learning_rate=1e-2)
        after_b = train_task(
            copy.deepcopy(learned_a),
            tokenizer,
            task_b,
            config,
            tasks_learned=1,
            prior_records=task_a,
            on_progress=lambda info, losses=losses: losses.append(info.loss),
        )
        assert losses[-1] < (1 - MIN_LOSS_DROP) * losses[0], f"{strategy} did not learn task B: {losses}"
        kl[strategy] = mean_kl(learned_a, after_b.model, tokenizer, task_a)
    print(f"mean KL on task A after learning B: {kl}")
    assert kl["adaptive_svd"] < MARGIN * kl["full"]
