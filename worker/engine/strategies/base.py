"""What a training strategy is to the loop: a ``Strategy`` prepares the model and its optimizer for one
task and says how to turn the trained model back into a plain Hugging Face model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

import torch

from app.jobs.strategies import StrategySpec

if TYPE_CHECKING:
    from ..config import OnPhase, TrainConfig
    from ..data import Example


@dataclass
class Prepared:
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    finish: Callable[[torch.nn.Module], torch.nn.Module]  # after training: e.g. merge adapters
    retention: dict  # the version's retention summary: {"strategy", "matrices", "summary"}

    # Hooks for training on several processes; a strategy whose optimizer holds state of its own (e.g.
    # adaptive_svd's projectors) overrides them, so the generic distributed code need not know it.
    def share_from_lead(self) -> None:
        """Make what each rank prepared for itself rank 0's before training starts; nothing by default."""

    def on_shards(self, model: torch.nn.Module, groups: list[dict],
                  shards: Mapping[torch.Tensor, torch.Tensor]) -> Prepared:  # noqa: ARG002
        """This preparation on FSDP's sharded ``model``: the optimizer rebuilt on its parameter ``groups``;
        ``shards`` maps each whole parameter to its shard. Nothing returned may keep a whole parameter:
        each rank would hold the whole model beside its shard."""
        return replace(self, model=model, optimizer=type(self.optimizer)(groups))


@dataclass
class Context:
    """What the loop knows about the task when a strategy prepares for it."""

    examples: list[Example]  # the new task's records as token ids
    prior: list[Example]  # earlier tasks' examples; empty unless the spec's needs_prior_tasks
    reference: list[Example]  # general text the lineage must keep handling (its reference set); likewise
    pad_id: int
    device: torch.device
    generator: torch.Generator  # the loop's seeded shuffler: draw from it, so runs stay reproducible
    tasks_learned: int
    on_phase: OnPhase


class Strategy(Protocol):
    """One way to train a task. ``spec`` is its torch-free half (name, settings model, whether it needs
    earlier tasks' data), the one the API validates jobs with."""

    spec: StrategySpec

    def prepare(self, model: torch.nn.Module, config: TrainConfig, context: Context) -> Prepared: ...


def unchanged(model):
    return model


def plain_adamw(model, config: TrainConfig) -> torch.optim.Optimizer:
    groups = decay_groups(model.named_parameters(), config.weight_decay)
    return torch.optim.AdamW(groups, lr=config.learning_rate)


def trainable_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def decay_groups(named_params, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only; biases and norm scales are not decayed (the usual practice)."""
    decay: list[torch.Tensor] = []
    no_decay: list[torch.Tensor] = []
    for _, param in named_params:
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]
