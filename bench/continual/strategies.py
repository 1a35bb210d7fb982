"""The strategies the harness compares, each as "learn one more task" on a model.

- ``full``, ``lora``: the engine's baselines (plain sequential fine-tuning; PEFT LoRA, merged).
- ``adaptive_svd``: the engine's method with its default retention (adaptive ratios, activations basis).
- ``adaptive_svd_fixed``: the same with ``Retention(mode="fixed")``: ``fixed_ratio`` everywhere.
- ``peft_osf``: PEFT's OSFConfig, the library implementation of the paper, as its baseline; a plug-in
  strategy registered here, so it trains in the engine's loop like the others.
- ``replay``: ``full`` with a replay buffer: ``replay_per_task`` training records of each earlier task
  (and of the general task) mixed into the new task's records; the classic strong baseline.
- ``adaptive_svd_replay``: the method with the service's rehearsal (``continual.replay``):
  ``replay_per_task`` training records of each earlier task mixed in (the service keeps no general
  records to replay).

Every strategy sees the same data sources, as the service gives them: the engine's ``adaptive_svd`` gets
as ``prior_records`` up to ``PRIOR_PER_TASK`` inputs of each earlier task (the service passes 32 of each)
and the general records' texts as ``reference_texts`` (the service passes the lineage's reference set);
``replay`` gets ``replay_per_task`` labelled records of each earlier task and of the general records.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import peft
import torch

from app.jobs import strategies as specs
from app.jobs.strategies import Retention
from worker.engine import TrainConfig, TrainResult, train_task
from worker.engine import strategies as implementations
from worker.engine.strategies import Prepared
from worker.engine.targets import find_targets

PRIOR_PER_TASK = 32  # like the service (worker/job_inputs.py PRIOR_SAMPLES_PER_TASK)

STRATEGIES = ("full", "lora", "adaptive_svd", "adaptive_svd_fixed", "adaptive_svd_replay", "peft_osf", "replay")


@dataclass
class TrainSettings:
    epochs: int
    lr: float | None  # None: each strategy's default (app.jobs.strategies)
    batch_size: int
    replay_per_task: int
    device: str | None = None
    retention: dict = field(default_factory=dict)  # Retention overrides for adaptive_svd*, e.g. energy


def _config(strategy: str, settings: TrainSettings, seed: int) -> TrainConfig:
    engine_strategy = {"adaptive_svd_fixed": "adaptive_svd", "adaptive_svd_replay": "adaptive_svd", "replay": "full"}
    fixed = {"mode": "fixed"} if strategy == "adaptive_svd_fixed" else {}
    return TrainConfig(
        strategy=engine_strategy.get(strategy, strategy),
        n_epochs=settings.epochs,
        batch_size=settings.batch_size,
        learning_rate=settings.lr,
        seed=seed,
        retention=Retention(**{**settings.retention, **fixed}),
        device=settings.device,
    )


def _sample(records: list[dict], count: int, rng: random.Random) -> list[dict]:
    return rng.sample(records, min(count, len(records)))


def reference_text(record: dict) -> str:
    """A general record as the plain text of a reference set (prompt and completion as one text)."""
    return record["prompt"] + record["completion"]


def learn(strategy: str, model, tokenizer, records: list[dict], earlier: list[list[dict]], general: list[dict],
          settings: TrainSettings, seed: int) -> TrainResult:
    """Train ``model`` on one more task; ``earlier``: the training records of every task learned before,
    oldest first; ``general``: the general records (``prompt``/``completion``). Returns the engine's result:
    the trained model and its retention summary."""
    config = _config(strategy, settings, seed)
    rng = random.Random(seed)
    if strategy == "replay":
        buffer = [r for old in [general, *earlier] for r in _sample(old, settings.replay_per_task, rng)]
        return train_task(model, tokenizer, records + buffer, config)
    prior = [r for old in earlier for r in _sample(old, PRIOR_PER_TASK, rng)]
    if strategy == "adaptive_svd_replay":
        records = records + [r for old in earlier for r in _sample(old, settings.replay_per_task, rng)]
    return train_task(model, tokenizer, records, config, tasks_learned=len(earlier), prior_records=prior,
                      reference_texts=[reference_text(r) for r in general])


def kept_room(retention: dict) -> dict | None:
    """How much of each matrix a version kept out of the update's reach, averaged over matrices (adaptive_svd's
    retention summary, the engine's or the service's version object): ``ratio`` (the kept rank's share),
    ``inputs`` (kept input directions / inputs) and ``frozen`` (entries the update cannot touch); ``None``
    for strategies that keep nothing."""
    summary = retention.get("summary") or {}
    if "mean_kept_input_share" not in summary:
        return None
    return {"ratio": summary["mean_ratio"], "frozen": summary["mean_frozen_share"],
            "inputs": summary["mean_kept_input_share"]}


def frozen_share(tasks_learned: int) -> float:
    """PEFT OSF's frozen share grows like the engine's ceiling: t/(t+1) of the way from 0.5 to 0.9."""
    return 0.5 + (0.9 - 0.5) * tasks_learned / (tasks_learned + 1)


class PeftOsf:
    """PEFT's OSF as a plug-in strategy of the engine, so it trains in the engine's loop (same data
    order, schedule, NaN guard, progress and cancel); registered with the harness, not the service."""

    spec = specs.StrategySpec("peft_osf", "PEFT's OSFConfig, the library implementation of the paper (a "
                                          "benchmark baseline).", shardings=("ddp",))

    def prepare(self, model, config, context) -> Prepared:
        share = frozen_share(context.tasks_learned)
        ranks = {t.name: max(1, round(share * min(t.shape))) for t in find_targets(model)}
        osf = peft.OSFConfig(target_modules=list(ranks), rank_pattern={f"^{n}$": r for n, r in ranks.items()})
        wrapped = peft.get_peft_model(model, osf)
        optimizer = torch.optim.AdamW([p for p in wrapped.parameters() if p.requires_grad],
                                      lr=config.learning_rate, weight_decay=config.weight_decay)
        summary = {"strategy": "peft_osf", "matrices": {}, "summary": {"frozen_share": share}}
        return Prepared(wrapped, optimizer, lambda m: m.merge_and_unload(), summary)


def register_peft_osf() -> None:
    """Both halves, once: the spec (what the engine's config validates against) and the implementation."""
    if "peft_osf" not in implementations.names():
        strategy = PeftOsf()
        specs.register(strategy.spec)
        implementations.register(strategy)


register_peft_osf()
