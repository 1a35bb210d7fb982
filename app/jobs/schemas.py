from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.core.schemas import StrictModel
from app.lineages.gates import validate_gates

JOB_STATUSES = ("validating_files", "queued", "running", "succeeded", "failed", "cancelled")
TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")
NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$"


class Hyperparameters(StrictModel):
    n_epochs: int | Literal["auto"] = Field("auto", description="1–100.")
    batch_size: int | Literal["auto"] = Field("auto", description="1–1024.")
    learning_rate_multiplier: float | Literal["auto"] = Field("auto", description="(0, 100].")

    # Strict numbers (issue 14): JSON true is not 1, nor "3" or 2.0 an epoch count. A before-validator
    # rather than StrictInt keeps the error's param the field's name, not a union member's.
    @field_validator("n_epochs", "batch_size", mode="before")
    @classmethod
    def _whole_number(cls, value):
        if value != "auto" and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"must be a whole number or 'auto', got {value!r}")
        return value

    @field_validator("learning_rate_multiplier", mode="before")
    @classmethod
    def _a_number(cls, value):
        if value != "auto" and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"must be a number or 'auto', got {value!r}")
        return value

    @field_validator("n_epochs")
    @classmethod
    def _epochs(cls, value):
        if value != "auto" and not 1 <= value <= 100:
            raise ValueError("must be between 1 and 100, or 'auto'")
        return value

    @field_validator("batch_size")
    @classmethod
    def _batch(cls, value):
        if value != "auto" and not 1 <= value <= 1024:
            raise ValueError("must be between 1 and 1024, or 'auto'")
        return value

    @field_validator("learning_rate_multiplier")
    @classmethod
    def _lr_multiplier(cls, value):
        if value != "auto" and not 0 < value <= 100:
            raise ValueError("must be in (0, 100], or 'auto'")
        return value


class Retention(StrictModel):
    mode: Literal["adaptive", "fixed"] | None = Field(
        None, description="'adaptive': the kept fraction grows with layer importance and tasks learned; "
                          "'fixed': keep fixed_ratio everywhere.")
    min_ratio: float | None = Field(None, ge=0.0, le=1.0, description="The paper's mrr.")
    target_ratio: float | None = Field(None, ge=0.0, le=1.0, description="The paper's trr.")
    fixed_ratio: float | None = Field(None, ge=0.0, le=1.0)
    basis: Literal["weights", "activations", "both"] | None = None
    energy: float | None = Field(None, gt=0.0, le=1.0,
                                 description="Activation-covariance energy to keep (activations basis).")
    target_regex: str | None = Field(None, max_length=500, description="Which linear layers are constrained.")
    train_embeddings: bool | None = None

    @field_validator("target_regex")
    @classmethod
    def _regex_compiles(cls, value):
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc})") from exc
        return value

    @model_validator(mode="after")
    def _ordered(self):
        if self.min_ratio is not None and self.target_ratio is not None and self.min_ratio > self.target_ratio:
            raise ValueError("min_ratio must not exceed target_ratio")
        return self


class Gates(StrictModel):
    """Thresholds a new version must meet to become the head (checked by ``app.lineages.gates``)."""

    max_forgetting: float | None = Field(None, description="Largest forgetting allowed on any earlier task "
                                                           "(-1 to 1).")
    max_acc_drop: float | None = Field(None, description="Largest drop of ACC vs. the base version (-1 to 1).")
    max_perplexity_ratio: float | None = Field(None, description="Reference-set perplexity vs. the base (> 0).")
    min_refusal_rate: float | None = Field(None, description="On harmful prompts (0 to 1).")
    max_over_refusal: float | None = Field(None, description="Refusals of benign prompts (0 to 1).")

    @model_validator(mode="after")
    def _in_range(self):
        validate_gates(self.model_dump(exclude_none=True))
        return self


class Continual(StrictModel):
    task: str | None = Field(None, min_length=1, max_length=128, pattern=NAME_PATTERN,
                             description="The task's name; default: the suffix, else the training file id.")
    strategy: Literal["adaptive_svd", "full", "lora"] = "adaptive_svd"
    retention: Retention | None = None
    learning_rate: float | None = Field(None, gt=0.0, le=1.0, strict=True)
    gates: Gates | None = None
    metric: Literal["exact_match", "contains", "rouge_l", "choice"] = "exact_match"
    labels: list[str] | None = Field(None, min_length=2, max_length=100,
                                     description="The answer choices (metric 'choice').")
    devices: int | None = Field(
        None, ge=1, le=16, strict=True,
        description="Processes (GPUs) that train the job together, with torch.distributed; default 1, at most the "
                    "worker's SCULPT_MAX_DEVICES. hyperparameters.batch_size stays the global batch, split "
                    "between them, so N devices train what one would.")
    sharding: Literal["ddp", "fsdp"] | None = Field(
        None, description="With devices > 1: 'ddp' (default) keeps a whole copy of the model on each device; "
                          "'fsdp' shards weights, gradients and optimizer state across them, for models whose "
                          "training state does not fit one device (each still holds the whole model once, "
                          "to calibrate). Not with strategy 'lora'.")
    queue: str = Field("default", min_length=1, max_length=64, pattern=NAME_PATTERN,
                       description="The Celery queue (a pool of workers) to run on.")

    @model_validator(mode="after")
    def _labels_with_choice(self):
        if self.metric == "choice" and not self.labels:
            raise ValueError("metric 'choice' needs labels")
        if self.sharding == "fsdp" and self.strategy == "lora":
            raise ValueError("sharding 'fsdp' is for full-weight training; use 'ddp' with strategy 'lora'")
        return self


class SupervisedSettings(StrictModel):
    hyperparameters: Hyperparameters | None = None


class SupervisedMethod(StrictModel):
    type: Literal["supervised"] = Field(description="Sculpt trains supervised fine-tuning jobs only.")
    supervised: SupervisedSettings | None = None


class JobCreate(StrictModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "model": "support-bot", "training_file": "file-3b1f0c2e9a7d4c5b8e6f1a2b", "suffix": "refunds",
        "hyperparameters": {"n_epochs": 3}, "seed": 7, "metadata": {"pipeline": "nightly"},
        "continual": {"task": "refunds", "strategy": "adaptive_svd", "gates": {"max_forgetting": 0.1}},
    }]})

    model: str = Field(min_length=1, max_length=80,
                       description="A lineage id (train on its head) or '<id>:v<n>' (only if that is still the head).")
    training_file: str = Field(min_length=1, max_length=64)
    validation_file: str | None = Field(None, min_length=1, max_length=64)
    hyperparameters: Hyperparameters | None = None
    seed: int | None = Field(None, ge=0, le=2**31 - 1, strict=True)
    suffix: str | None = Field(None, min_length=1, max_length=64, pattern=NAME_PATTERN)
    metadata: dict[str, str] | None = Field(None, max_length=16)
    continual: Continual | None = None
    webhook_url: str | None = Field(
        None, min_length=1, max_length=2048,
        description="POSTed the job object, signed, when the job ends (a host the operator allows).")
    method: SupervisedMethod | None = Field(
        None, description="OpenAI's newer form: {'type': 'supervised', 'supervised': {'hyperparameters': …}}.")
    integrations: list[Any] | None = Field(None, max_length=0, description="Not supported; null or [] only.")

    @model_validator(mode="after")
    def _one_place_for_hyperparameters(self):
        nested = self.method.supervised.hyperparameters if self.method and self.method.supervised else None
        if nested is not None:
            if self.hyperparameters is not None:
                raise ValueError("give hyperparameters either at the top level or in method.supervised, not both")
            self.hyperparameters = nested
        return self

    @field_validator("metadata")
    @classmethod
    def _metadata_sizes(cls, value):
        for key, item in (value or {}).items():
            if not 1 <= len(key) <= 64 or len(item) > 512:
                raise ValueError("keys are 1-64 characters and values at most 512")
        return value


class JobError(BaseModel):
    code: str
    message: str
    param: str | None = None


class Progress(BaseModel):
    phase: str | None = None
    step: int | None = None
    total_steps: int | None = None
    fraction: float | None = None
    eta_seconds: float | None = None
    # Why a queued job cannot start, e.g. "queue gpu has no live worker" (issue 14); None otherwise.
    waiting_for: str | None = None


class JobResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    version: int | None = None
    promoted: bool | None = None
    acc: float | None = None
    bwt: float | None = None


class WebhookDelivery(BaseModel):
    attempt: int
    at: int
    status_code: int | None = Field(None, description="The receiver's HTTP status.")
    error: str | None = Field(None, description="Why no status came back (timeout, refused, …).")


class Webhook(BaseModel):
    url: str
    deliveries: list[WebhookDelivery]


class JobObject(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "ftjob-5c2a9e1f0b7d4e3a8c6b1d2e", "object": "fine_tuning.job", "model": "support-bot",
        "status": "running", "created_at": 1767225600, "finished_at": None, "estimated_finish": 1767226200,
        "fine_tuned_model": None, "error": None,
        "hyperparameters": {"n_epochs": 3, "batch_size": "auto", "learning_rate_multiplier": "auto"},
        "training_file": "file-3b1f0c2e9a7d4c5b8e6f1a2b", "validation_file": None, "trained_tokens": None,
        "seed": 7, "suffix": "refunds", "metadata": {"pipeline": "nightly"}, "organization_id": "sculpt",
        "result_files": [], "method": {"type": "supervised"},
        "continual": {"task": "refunds", "strategy": "adaptive_svd", "metric": "exact_match", "queue": "default",
                      "gates": {"max_forgetting": 0.1}},
        "base_version": 2, "cancel_requested": False,
        "progress": {"phase": "training", "step": 120, "total_steps": 300, "fraction": 0.4, "eta_seconds": 95.0},
        "result": None,
    }]})

    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    model: str
    status: Literal[JOB_STATUSES]  # type: ignore[valid-type]
    created_at: int
    finished_at: int | None
    estimated_finish: int | None
    fine_tuned_model: str | None
    error: JobError | None
    hyperparameters: dict[str, Any]
    training_file: str
    validation_file: str | None
    trained_tokens: int | None
    seed: int
    suffix: str | None
    metadata: dict[str, str] | None
    organization_id: str = "sculpt"
    result_files: list[str] = Field(default_factory=list)
    method: dict[str, Any] = Field(default_factory=lambda: {"type": "supervised"})
    continual: dict[str, Any]
    base_version: int | None
    cancel_requested: bool
    progress: Progress
    result: JobResult | None
    webhook: Webhook | None = None


class EventObject(BaseModel):
    id: str
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    created_at: int
    level: Literal["info", "warn", "error"]
    message: str
    type: Literal["message", "metrics"]
    data: dict[str, Any] | None = None


class CheckpointObject(BaseModel):
    id: str
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    created_at: int
    fine_tuned_model_checkpoint: str
    fine_tuning_job_id: str
    step_number: int
    metrics: dict[str, Any]
    checkpoint_uri: str
    checkpoint_sha256: str | None
