from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.core.enums import JOB_STATUSES, RESULTS_PURPOSE, STEP_METRICS, EventType
from app.core.schemas import StrictModel
from app.jobs.spec import NAME_PATTERN, Continual, Hyperparameters
from app.jobs.spec import Gates as Gates  # re-exported: lineages set the same gates


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
    validation_file: str | None = Field(
        None, min_length=1, max_length=64,
        description="The task's held-out set: the accuracy matrix scores the task on it (and the validation loss is "
                    "measured on it each epoch). Left out: a seeded 10% of the training file is held out instead, "
                    "never trained on. Refused (400) when it is the training file or shares a record with it.")
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
    step: int | None = Field(None, description="Training: optimizer steps done. Scoring phases (unit 'items'): "
                                               "held-out records and suite items scored.")
    total_steps: int | None = None
    unit: str | None = Field(None, description="'items' while a scoring phase counts scored items; else steps.")
    stage: str | None = Field(None, description="What a scoring phase is scoring now: a task or a suite.")
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
    result_files: list[str] = Field(default_factory=list,
                                    description=f"Files (purpose '{RESULTS_PURPOSE}') with the job's step "
                                                f"metrics as CSV: {','.join(STEP_METRICS)}.")
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
    type: EventType
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
