"""A stored job's settings, loaded into the API's own spec models, as the engine's training config: the
strategies' settings objects pass through as validated."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.jobs.spec import Continual, Hyperparameters, LoraSettings, Retention

if TYPE_CHECKING:
    from worker.engine import TrainConfig


def train_config(hyperparameters: dict | None, continual: dict | None, *, seed: int,
                 device: str | None) -> TrainConfig:
    """The one mapping from a job (its stored JSON) to a ``TrainConfig``; raises ValueError for settings
    the spec no longer accepts (e.g. a strategy this worker does not have)."""
    from worker.engine import TrainConfig

    hyper = Hyperparameters.model_validate(hyperparameters or {})
    spec = Continual.model_validate(continual or {})
    # Never null once validated: a null learning rate is the strategy's.
    assert spec.learning_rate is not None
    return TrainConfig(
        strategy=spec.strategy,
        n_epochs=hyper.resolved("n_epochs"),
        batch_size=hyper.resolved("batch_size"),
        learning_rate=spec.learning_rate * hyper.resolved("learning_rate_multiplier"),
        seed=seed,
        retention=spec.retention or Retention(),
        lora=spec.lora or LoraSettings(),
        options=spec.options or {},
        device=device,
        devices=spec.devices,
        sharding=spec.sharding,
    )
