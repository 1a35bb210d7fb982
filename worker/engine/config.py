"""Training and retention settings of one task, and what a finished task returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.core.enums import SHARDINGS
from app.jobs import spec, strategies
from app.jobs.strategies import LoraSettings, Retention


def _default(model, name: str):
    """A job spec field's default: the spec holds the defaults, the engine only restates none."""
    return field(default=model.model_fields[name].default)


@dataclass
class TrainConfig:
    strategy: str = strategies.DEFAULT_STRATEGY
    n_epochs: int = spec.AUTO["n_epochs"]
    batch_size: int = spec.AUTO["batch_size"]
    learning_rate: float | None = None  # None: the strategy's default (app.jobs.strategies)
    warmup_ratio: float = 0.05
    grad_accum: int = 1
    weight_decay: float = 0.01
    seed: int = 0
    max_length: int = 512
    # The strategies' own settings models, as the API validated them (app.jobs.strategies): the engine does
    # not check them again.
    retention: Retention = field(default_factory=Retention)
    lora: LoraSettings = field(default_factory=LoraSettings)
    options: dict[str, Any] = field(default_factory=dict)  # a plug-in strategy's settings (its settings model's)
    device: str | None = None  # None: cuda when available, else cpu; bf16 autocast on cuda
    # Processes training together (one per GPU from ``device`` on, else on the CPU); batch_size stays the
    # global batch, split between them. "ddp": a full copy per process; "fsdp": parameters, gradients and
    # optimizer state sharded across them.
    devices: int = _default(spec.Continual, "devices")
    sharding: str = _default(spec.Continual, "sharding")

    def __post_init__(self) -> None:
        rate_given = self.learning_rate is not None
        if not rate_given and self.strategy in strategies.names():
            self.learning_rate = strategies.get(self.strategy).learning_rate
        self.retention = strategies.settle_relative_step(self.retention, rate_given)

    def validate(self) -> None:
        from .strategies import registry  # the implementations import this module

        implementation = registry.get(self.strategy)
        for name in ("n_epochs", "batch_size", "grad_accum", "max_length", "devices"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.sharding not in SHARDINGS:
            raise ValueError(f"sharding must be one of {SHARDINGS}, got {self.sharding!r}")
        spec.check_devices(self.devices, self.batch_size)
        if self.devices > 1:
            strategies.check_sharding(implementation.spec, self.sharding)
        if self.learning_rate is None or not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")


@dataclass
class ProgressInfo:
    step: int
    total_steps: int
    loss: float
    lr: float
    tokens_per_second: float
    epoch: float
    valid_loss: float | None = None  # on an epoch's last step, when there are validation records


# The caller's hooks into a training run. Only the lead rank calls them; with several devices,
# distributed.py relays them to the launching process.
OnPhase = Callable[[str], None]  # a phase began: "calibrating", then "training"
OnProgress = Callable[[ProgressInfo], None]  # after each optimizer step
ShouldCancel = Callable[[], bool]  # asked after each step; True ends the run with TrainingCancelled


@dataclass
class TrainResult:
    model: Any  # a plain Hugging Face model (LoRA merged), ready for save_pretrained
    # {"strategy", "matrices": {name: {shape [out, in], importance, ratio, weight_rank, activation_rank,
    #  kept_out, kept_in}} (adaptive_svd only), "summary": {...}}; JSON-serialisable.
    retention: dict
    steps: int
    trained_tokens: int
    final_loss: float
    seconds: float


class SettingsError(ValueError):
    """The task's own settings cannot work with this model or these records (a ``target_regex`` that
    matches no layer, records with nothing to learn): the user's mistake, reported on the job with ``code``
    and ``param`` (the setting to change) rather than as an internal error."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_training_config") -> None:
        super().__init__(message)
        self.param = param
        self.code = code

    def __reduce__(self):  # keeps param and code when it crosses from a training process (devices > 1)
        return type(self), (str(self), self.param, self.code)


class TrainingCancelled(Exception):
    """The cancel check returned True; the model is mid-training and must not be saved."""


class NonFiniteLoss(Exception):
    """The loss became NaN or infinite; the model is broken and must not be saved."""
