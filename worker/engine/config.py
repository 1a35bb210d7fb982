"""Training and retention settings of one task, and what a finished task returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.core.enums import RETENTION_BASES, RETENTION_MODES, SHARDINGS
from app.jobs import spec, strategies
from app.jobs.strategies import LoraSettings, Retention


def _default(model, name: str):
    """A job spec field's default: the spec holds every default, the engine only restates none."""
    return field(default=model.model_fields[name].default)


@dataclass
class RetentionConfig:
    """How much of each target matrix is kept, and where that kept subspace comes from.

    A matrix's kept fraction starts between ``min_ratio`` and ``target_ratio`` (by importance, or
    ``fixed_ratio`` everywhere) and moves towards ``max_ratio`` as the lineage learns more tasks.
    """

    mode: str = _default(Retention, "mode")
    min_ratio: float = _default(Retention, "min_ratio")
    target_ratio: float = _default(Retention, "target_ratio")
    max_ratio: float = 0.9
    fixed_ratio: float = _default(Retention, "fixed_ratio")
    basis: str = _default(Retention, "basis")
    energy: float = _default(Retention, "energy")
    reference_share: float = _default(Retention, "reference_share")
    reference_energy: float = _default(Retention, "reference_energy")
    target_regex: str | None = _default(Retention, "target_regex")
    train_embeddings: bool = _default(Retention, "train_embeddings")
    calibration_batches: int = 4

    def validate(self) -> None:
        if self.mode not in RETENTION_MODES:
            raise ValueError(f"retention mode must be one of {RETENTION_MODES}, got {self.mode!r}")
        if self.basis not in RETENTION_BASES:
            raise ValueError(f"retention basis must be one of {RETENTION_BASES}, got {self.basis!r}")
        if not 0.0 <= self.min_ratio <= self.target_ratio <= self.max_ratio < 1.0:
            raise ValueError(
                "retention ratios must satisfy 0 <= min_ratio <= target_ratio <= max_ratio < 1, got "
                f"{self.min_ratio}, {self.target_ratio}, {self.max_ratio}"
            )
        if not 0.0 <= self.fixed_ratio < 1.0:
            raise ValueError(f"fixed_ratio must be in [0, 1), got {self.fixed_ratio}")
        if not 0.0 < self.energy < 1.0:
            raise ValueError(f"energy must be in (0, 1), got {self.energy}")
        if not 0.0 < self.reference_energy < 1.0:
            raise ValueError(f"reference_energy must be in (0, 1), got {self.reference_energy}")
        if not 0.0 <= self.reference_share <= 1.0:
            raise ValueError(f"reference_share must be in [0, 1], got {self.reference_share}")
        if self.calibration_batches < 1:
            raise ValueError("calibration_batches must be at least 1")


@dataclass
class LoraConfig:
    r: int = _default(LoraSettings, "r")
    alpha: int = _default(LoraSettings, "alpha")
    dropout: float = _default(LoraSettings, "dropout")


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
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    options: dict[str, Any] = field(default_factory=dict)  # a plug-in strategy's settings (its settings model's)
    device: str | None = None  # None: cuda when available, else cpu; bf16 autocast on cuda
    # Processes training together (one per GPU from ``device`` on, else on the CPU); batch_size stays the
    # global batch, split between them. "ddp": a full copy per process; "fsdp": parameters, gradients and
    # optimizer state sharded across them.
    devices: int = _default(spec.Continual, "devices")
    sharding: str = _default(spec.Continual, "sharding")

    def __post_init__(self) -> None:
        if self.learning_rate is None and self.strategy in strategies.names():
            self.learning_rate = strategies.get(self.strategy).learning_rate

    def validate(self) -> None:
        from .strategies import registry  # the implementations import this module

        implementation = registry.get(self.strategy)
        for name in ("n_epochs", "batch_size", "grad_accum", "max_length", "devices"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.sharding not in SHARDINGS:
            raise ValueError(f"sharding must be one of {SHARDINGS}, got {self.sharding!r}")
        if self.devices > self.batch_size:
            raise ValueError(
                f"batch_size {self.batch_size} is smaller than devices {self.devices}: the batch is split "
                "between the devices, so each needs at least one example a step"
            )
        if self.devices > 1 and self.sharding not in implementation.spec.shardings:
            raise ValueError(f"sharding {self.sharding!r} does not work with strategy {self.strategy!r}; use "
                             f"{' or '.join(map(repr, implementation.spec.shardings))}")
        if self.learning_rate is None or not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        self.retention.validate()


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
