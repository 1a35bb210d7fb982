"""What a training strategy is to the loop: a ``Strategy`` prepares the model and its optimizer for one
task and says how to turn the trained model back into a plain Hugging Face model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch

from app.jobs.strategies import StrategySpec

from ..optim import decay_groups

if TYPE_CHECKING:
    from ..config import OnPhase, TrainConfig
    from ..data import Example


@dataclass
class Prepared:
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    finish: Callable[[torch.nn.Module], torch.nn.Module]  # after training: e.g. merge adapters
    retention: dict  # the version's retention summary: {"strategy", "matrices", "summary"}


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
