"""A stored job's settings, loaded into the API's own spec models, as the engine's training config (the
strategies' settings objects pass through as validated), and what this worker checks of them before a job
loads anything: that they work together and ask for no more devices than it has."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.core.db.tables import Job
from app.core.settings import get_settings
from app.jobs.spec import Continual, Hyperparameters, LoraSettings, Retention
from worker.errors import JobFailed

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


def job_train_config(job: Job) -> TrainConfig:
    """The job's training config, checked before anything is loaded, so settings that cannot work fail the
    job at once."""
    try:
        config = train_config(job.hyperparameters, job.continual, seed=job.seed, device=get_settings().device)
    except ValueError as exc:
        raise JobFailed("invalid_training_config", f"the job's training settings are not valid: {exc}") from exc
    allowed = allowed_devices()
    if config.devices > allowed:
        raise JobFailed("too_many_devices", f"the job asks for {config.devices} devices (continual.devices) but this "
                        f"worker allows at most {allowed} (SCULPT_MAX_DEVICES, default: the GPUs it sees); "
                        "ask for fewer or send the job to a queue of bigger workers", "continual.devices")
    try:
        config.validate()
    except ValueError as exc:
        raise JobFailed("invalid_training_config", f"the job's training settings do not work together: {exc}") from exc
    return config


def allowed_devices() -> int:
    """SCULPT_MAX_DEVICES, else the GPUs from the worker's device on; never more GPUs than it sees."""
    import torch

    from worker.engine.trainer import resolve_device

    device = resolve_device(get_settings().device)
    visible = torch.cuda.device_count() - (device.index or 0) if device.type == "cuda" else None
    limit = get_settings().max_devices or visible or 1
    return min(limit, visible) if visible is not None else limit
