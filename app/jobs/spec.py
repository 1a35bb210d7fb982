"""One job's training settings, typed once and shared by the API (validates and stores them) and the
worker (loads the stored JSON into the same models and maps them to its engine config). Torch-free.

A field left out (or null) takes the default written on it, a strategy's settings theirs
(``app.jobs.strategies``) and a gate its suite's (``app.lineages.suites``); "auto" hyperparameters resolve
through ``AUTO``.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict, overload

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from app.core.enums import METRICS, SHARDINGS
from app.core.schemas import StrictModel
from app.jobs import strategies
from app.jobs.strategies import DEFAULT_STRATEGY, LoraSettings, Retention, SettingsModel
from app.lineages.gates import GateError, gates_known, validate_gates

NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$"
# What "auto" hyperparameters mean; the learning rate is continual.learning_rate (default: the strategy's)
# times the multiplier.
class Auto(TypedDict):
    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float


AUTO: Auto = {"n_epochs": 3, "batch_size": 8, "learning_rate_multiplier": 1.0}
Hyperparameter = Literal["n_epochs", "batch_size", "learning_rate_multiplier"]

__all__ = ["AUTO", "NAME_PATTERN", "Continual", "Gates", "Hyperparameters", "LoraSettings", "Retention"]


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

    @overload
    def resolved(self, name: Literal["n_epochs", "batch_size"]) -> int: ...
    @overload
    def resolved(self, name: Literal["learning_rate_multiplier"]) -> float: ...
    def resolved(self, name: Hyperparameter) -> int | float:
        value = getattr(self, name)
        return AUTO[name] if value == "auto" else value


def _gate_properties(schema: dict[str, Any]) -> None:
    # Read at schema time, so the gates of suites registered after import (plug-ins) are listed too.
    schema["properties"] = {
        name: {"anyOf": [{"type": "number"}, {"type": "null"}], "default": None,
               "title": name.replace("_", " ").title(), "description": gate.description}
        for name, gate in gates_known().items()}


class Gates(BaseModel):
    """Thresholds a new version must meet to become the head: one for any gate ``app.lineages.gates`` knows
    (the task record's and each registered suite's, a plug-in's too), checked by ``validate_gates``."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_gate_properties)

    @model_validator(mode="before")
    @classmethod
    def _known(cls, data):
        try:
            return validate_gates(data)  # unknown names and bad thresholds are refused; nulls dropped
        except GateError as exc:  # the error points at the gate (its "field"), not the whole object
            raise PydanticCustomError("invalid_gate", str(exc), {"field": exc.gate}) from exc


def check_devices(devices: int, batch_size: int) -> None:
    """Refuse more devices than examples a step: the global batch is split between them (the API's check
    at creation, and the engine's for direct use)."""
    if devices > batch_size:
        raise ValueError(f"batch_size {batch_size} is smaller than devices {devices}: the batch is split between "
                         "the devices, so each needs at least one example a step")


def _strategy_enum(schema: dict[str, Any]) -> None:
    # Read at schema time, so strategies registered after import (plug-ins) are listed too.
    schema["enum"] = list(strategies.names())


class Continual(SettingsModel):
    task: str | None = Field(None, min_length=1, max_length=128, pattern=NAME_PATTERN,
                             description="The task's name; default: the suffix, else the training file id.")
    strategy: str = Field(DEFAULT_STRATEGY, json_schema_extra=_strategy_enum,
                          description="How to train; GET /v1/capabilities lists the strategies and their settings.")
    retention: Retention | None = None
    lora: LoraSettings | None = Field(None, description="Strategy 'lora': the adapters' rank, alpha and dropout.")
    options: dict[str, Any] | None = Field(None, description="A plug-in strategy's settings (see "
                                                             "GET /v1/capabilities).")
    learning_rate: float | None = Field(None, gt=0.0, le=1.0, strict=True,
                                        description="The peak learning rate; default: the strategy's own "
                                                    "(GET /v1/capabilities), written on the job.")
    replay: int = Field(0, ge=0, le=1000, strict=True,
                        description="Rehearsal: this many training records of each task the lineage learned "
                                    "before (never its held-out records) are mixed into this job's training; "
                                    "0 (default) for none. Works with every strategy.")
    gates: Gates | None = None
    metric: Literal[METRICS] = "exact_match"  # type: ignore[valid-type]
    labels: list[str] | None = Field(None, min_length=2, max_length=100,
                                     description="The answer choices (metric 'choice').")
    devices: int = Field(
        1, ge=1, le=16, strict=True,
        description="Processes (GPUs) that train the job together, with torch.distributed; default 1, at most the "
                    "worker's SCULPT_MAX_DEVICES. hyperparameters.batch_size stays the global batch, split "
                    "between them, so N devices train what one would.")
    # Typed without None: a null is replaced by the default before validation (SettingsModel).
    sharding: Literal[SHARDINGS] = Field(  # type: ignore[valid-type]
        "ddp", description="With devices > 1: 'ddp' (default) keeps a whole copy of the model on each device; "
                           "'fsdp' shards weights, gradients and optimizer state across them, for models whose "
                           "training state does not fit one device (each still holds the whole model once, "
                           "to calibrate). Not with strategy 'lora'.")
    queue: str = Field("default", min_length=1, max_length=64, pattern=NAME_PATTERN,
                       description="The Celery queue (a pool of workers) to run on.")

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value):
        strategies.get(value)
        return value

    @field_validator("options")
    @classmethod
    def _plugin_settings(cls, value, info):
        spec = strategies.get(info.data["strategy"]) if "strategy" in info.data else None
        if value is None or spec is None or spec.settings_field != "options":
            return value  # no strategy (already an error) or not its field (refused below)
        return spec.settings.model_validate(value).model_dump(mode="json")

    @model_validator(mode="after")
    def _consistent(self):
        if self.metric == "choice" and not self.labels:
            raise ValueError("metric 'choice' needs labels")
        spec = strategies.get(self.strategy)
        strategies.check_sharding(spec, self.sharding)
        rate_given = self.learning_rate is not None
        for name in ("lora", "options"):
            if getattr(self, name) is not None and spec.settings_field != name:
                raise ValueError(f"continual.{name} does not apply to strategy {self.strategy!r}")
        if self.learning_rate is None:
            self.learning_rate = spec.learning_rate
        if spec.settings_field == "options" and self.options is None:
            self.options = spec.settings().model_dump(mode="json")
        elif spec.settings_field is not None and getattr(self, spec.settings_field) is None:
            # Stored with the job, so the job object shows the settings it trains with.
            setattr(self, spec.settings_field, spec.settings())
        if self.retention is not None:  # written on the job, so it shows whether the rate was scaled
            self.retention = strategies.settle_relative_step(self.retention, rate_given)
        return self
