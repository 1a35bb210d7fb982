"""Continual-learning benchmark: a stream of 5 synthetic tasks through every strategy.

    python -m bench.continual [--quick]

A tiny Llama first learns a "general" task of its own (the base); then each strategy learns tasks
1..5 in order. Every task is a set of random key -> value facts under its own tag, so tasks compete
for the same capacity and nothing is shared that would flatter any strategy. A score is exact match
of the greedy completion (teacher-forced argmax of every completion token and eos, which is what
greedy decoding produces), on that task's facts. Prints the accuracy matrix per strategy, ACC, BWT,
the share of the general task kept, and seconds; the last line is JSON.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import time

import peft
import torch

from worker.engine import LoraConfig, RetentionConfig, TrainConfig, train_task
from worker.engine.data import batches, encode
from worker.engine.targets import find_targets
from worker.engine.trainer import warmup_cosine
from worker.tiny import build_tiny_causal_lm

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def fact_task(tag: str, count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "prompt": f"{tag} {''.join(rng.choices(LETTERS, k=4))}=",
            "completion": "".join(rng.choices(LETTERS, k=3)),
        }
        for _ in range(count)
    ]


@torch.no_grad()
def exact_match(model, tokenizer, records) -> float:
    model.eval()
    hits = 0
    for batch in batches(encode(records, tokenizer, "causal", 64), 64, tokenizer.pad_token_id):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        predicted, targets = logits[:, :-1].argmax(-1), batch["labels"][:, 1:]
        scored = targets != -100
        hits += int(((predicted == targets) | ~scored).all(dim=1).sum())
    return hits / len(records)


def train_peft_osf(model, tokenizer, records, config: TrainConfig, frozen_share: float):
    """PEFT's OSF as the library baseline: same data order, optimizer and schedule as the engine."""
    targets = [t.name for t in find_targets(model)]
    rank = {name: max(1, round(frozen_share * min(t.shape))) for name, t in zip(targets, find_targets(model))}
    osf = peft.OSFConfig(target_modules=targets, rank_pattern={f"^{name}$": r for name, r in rank.items()})
    wrapped = peft.get_peft_model(model, osf)
    optimizer = torch.optim.AdamW(
        [p for p in wrapped.parameters() if p.requires_grad],
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )
    examples = encode(records, tokenizer, "causal", config.max_length)
    steps = math.ceil(len(examples) / config.batch_size) * config.n_epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(round(config.warmup_ratio * steps), steps)
    )
    generator = torch.Generator().manual_seed(config.seed)
    wrapped.train()
    for _ in range(config.n_epochs):
        for batch in batches(examples, config.batch_size, tokenizer.pad_token_id, generator):
            wrapped(**batch).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            schedule.step()
    return wrapped.merge_and_unload().eval()


def frozen_share(tasks_learned: int) -> float:
    """PEFT OSF's frozen share grows like the engine's ceiling: t/(t+1) of the way to 0.9."""
    return 0.5 + (0.9 - 0.5) * tasks_learned / (tasks_learned + 1)


STRATEGIES = {
    "full": {"strategy": "full"},
    "lora": {"strategy": "lora"},
    "adaptive_svd/weights": {"strategy": "adaptive_svd", "basis": "weights"},
    "adaptive_svd/activations": {"strategy": "adaptive_svd", "basis": "activations"},
    "adaptive_svd/both": {"strategy": "adaptive_svd", "basis": "both"},
    "peft_osf": {"strategy": "peft_osf"},
}


def run_stream(name, base, tokenizer, general, tasks, args) -> dict:
    spec = STRATEGIES[name]
    model, matrix, started = copy.deepcopy(base), [], time.monotonic()
    learned = [general]
    for index, task in enumerate(tasks, start=1):
        config = TrainConfig(
            strategy=spec["strategy"] if spec["strategy"] != "peft_osf" else "full",
            n_epochs=args.epochs,
            batch_size=8,
            learning_rate=args.lr,
            seed=index,
            retention=RetentionConfig(basis=spec.get("basis", "activations"), energy=args.energy),
            lora=LoraConfig(r=8, alpha=16),
        )
        if spec["strategy"] == "peft_osf":
            model = train_peft_osf(model, tokenizer, task, config, frozen_share(index))
        else:
            prior = [record for old in learned for record in old]
            model = train_task(model, tokenizer, task, config, tasks_learned=index, prior_records=prior).model
        learned.append(task)
        matrix.append([exact_match(model, tokenizer, records) for records in [general, *tasks]])
    seconds = time.monotonic() - started
    final, count = matrix[-1], len(tasks)
    return {
        "matrix": [[round(score, 3) for score in row] for row in matrix],
        "acc": sum(final[1:]) / count,
        "bwt": sum(final[i] - matrix[i - 1][i] for i in range(1, count)) / (count - 1),
        "general_kept": final[0],
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a smaller, faster stream for a smoke run")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--energy", type=float, default=RetentionConfig().energy)
    args = parser.parse_args()
    torch.set_num_threads(2)
    facts = 8 if args.quick else 24
    if args.quick:
        args.epochs = 10

    general = fact_task("g", 2 * facts, seed=100)
    tasks = [fact_task(f"t{i}", facts, seed=i) for i in range(1, 6)]
    base, tokenizer = build_tiny_causal_lm(hidden=128, layers=2, heads=4, intermediate=256, seed=0)
    pretrain = TrainConfig(strategy="full", n_epochs=3 * args.epochs, learning_rate=args.lr, seed=0)
    base = train_task(base, tokenizer, general, pretrain).model
    base_general = exact_match(base, tokenizer, general)
    print(f"base: general task exact match {base_general:.3f}")

    results = {}
    for name in args.strategies.split(","):
        results[name] = run_stream(name, base, tokenizer, general, tasks, args)
        r = results[name]
        print(
            f"\n{name}: ACC {r['acc']:.3f}  BWT {r['bwt']:+.3f}  general kept {r['general_kept']:.3f}"
            f"  ({r['seconds']} s)\n  rows = after task 1..5, columns = general, t1..t5"
        )
        for row in r["matrix"]:
            print("  " + "  ".join(f"{score:.2f}" for score in row))
    print(
        json.dumps(
            {
                "base_general": base_general,
                "epochs": args.epochs,
                "lr": args.lr,
                "energy": args.energy,
                "facts_per_task": facts,
                "strategies": results,
            }
        )
    )


if __name__ == "__main__":
    main()
