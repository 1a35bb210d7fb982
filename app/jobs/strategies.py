"""Training strategies as plug-ins, torch-free half: each strategy's name, settings model and needs.

The API validates a job's strategy and settings against this registry; the worker's implementations
(``worker.engine.strategies``) register against the same names, and the worker refuses one whose spec is
missing. Adding a strategy: its spec (and settings model) here, its implementation as one worker module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from app.core.client_regex import compile_client_regex
from app.core.enums import RETENTION_BASES, RETENTION_MODES, SHARDINGS
from app.core.schemas import StrictModel


class SettingsModel(StrictModel):
    """A settings model whose field defaults are the real defaults: null (or leaving a field out) means
    "the default", so a job stored before a default changed keeps training as it was submitted."""

    @field_validator("*", mode="before")
    @classmethod
    def _null_is_default(cls, value, info):
        return cls.model_fields[info.field_name].get_default(call_default_factory=True) if value is None else value


class Retention(SettingsModel):
    """adaptive_svd's settings; ``target_regex`` also picks the layers LoRA adapts. The bounds here are the
    only ones: the engine trains with this object as validated, so a value accepted here runs."""

    # Not user settings (class constants, so a job cannot set them): the kept fraction's ceiling as a
    # lineage learns tasks, which leaves every matrix room to learn, and the new task's calibration batches.
    max_ratio: ClassVar[float] = 0.9
    calibration_batches: ClassVar[int] = 4

    # Typed without None: a null is replaced by the default before validation (SettingsModel).
    mode: Literal[RETENTION_MODES] = Field(  # type: ignore[valid-type]
        "adaptive", description="'adaptive': the kept fraction grows with layer importance and tasks learned; "
                                "'fixed': keep fixed_ratio everywhere.")
    min_ratio: float = Field(0.1, ge=0.0, le=max_ratio, description="The paper's mrr; at most target_ratio.")
    target_ratio: float = Field(0.6, ge=0.0, le=max_ratio,
                                description=f"The paper's trr; at most {max_ratio}, the kept fraction's ceiling.")
    fixed_ratio: float = Field(0.5, ge=0.0, lt=1.0, description="Mode 'fixed': the kept fraction; below 1, "
                                                                "so every matrix can learn.")
    # "activations" won the continual benchmark (bench/RESULTS.md): "weights" and "both" kept the base
    # task but could not learn new tasks that share its input distribution.
    basis: Literal[RETENTION_BASES] = "activations"  # type: ignore[valid-type]
    energy: float = Field(0.9, gt=0.0, lt=1.0,
                          description="Activation-covariance energy to keep (activations basis).")
    # Half a first job's kept rank for general ability, on every job: on a real model's task stream that kept most of
    # its right general answers with the tasks still learned, more than on the first job only (figures:
    # bench/RESULTS.md). A tiny model built from scratch whose reference set is its tasks' own inputs
    # learns less with it.
    reference_share: float = Field(
        0.5, ge=0.0, le=1.0,
        description="Most of the kept rank the lineage's reference set (general text, as user turns for a chat "
                    "model) may claim beside earlier tasks' inputs (activations and both bases), as a share of "
                    "the rank a lineage's first job keeps: it does not grow with the tasks learned; 0: none, "
                    "and a lineage's first job keeps the weights' own top directions.")
    # Higher than energy: under its share's cap the reference set may keep its small directions too, which
    # on a real model kept more of its right general answers with the task learned as well (bench/RESULTS.md);
    # tasks' energy stays lower, as keeping that much of theirs stops tasks being learned.
    reference_energy: float = Field(0.99, gt=0.0, lt=1.0,
                                    description="Activation energy of the reference set to keep, within "
                                                "reference_share.")
    target_regex: str | None = Field(None, max_length=500, description="Which linear layers are constrained "
                                                                       "(or adapted, with strategy 'lora').")
    train_embeddings: bool = False
    # Unset, on exactly when the job gives no learning rate (``settle_relative_step``): the default rate then
    # suits every family (bench/RESULTS.md, "The step relative to the weights"), and a rate given is used as given.
    relative_step: bool | None = Field(
        None, description="Scale learning_rate by the target matrices' median RMS over 0.19 (SmolLM2-135M's, "
                          "where the default rate was measured), at most 1: Adam moves each weight by about the "
                          "rate, so smaller weights (Gemma 3's 0.04) would otherwise take a larger relative step. "
                          "Default: on when the job sets no learning_rate, off when it does.")

    @field_validator("target_regex")
    @classmethod
    def _regex_compiles(cls, value):
        if value is not None:
            compile_client_regex(value)  # ValueError: pydantic's 422 names the field and the reason
        return value

    @model_validator(mode="after")
    def _ordered(self):
        if self.min_ratio > self.target_ratio:
            raise ValueError("min_ratio must not exceed target_ratio")
        return self


def settle_relative_step(retention: Retention, rate_given: bool) -> Retention:
    """``retention`` with ``relative_step`` decided: where unset, on exactly when no learning rate was given."""
    if retention.relative_step is not None:
        return retention
    return retention.model_copy(update={"relative_step": not rate_given})


class LoraSettings(SettingsModel):
    """LoRA's adapter (PEFT), merged into the weights when training ends."""

    r: int | None = Field(8, ge=1, le=1024, strict=True, description="The adapters' rank.")
    alpha: int | None = Field(16, ge=1, le=4096, strict=True, description="Scale: updates are multiplied by "
                                                                         "alpha / r.")
    dropout: float | None = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the adapters' inputs.")


class NoSettings(SettingsModel):
    """A strategy with nothing to set."""


@dataclass(frozen=True)
class StrategySpec:
    name: str
    description: str
    settings: type[BaseModel] = NoSettings
    # The key of ``continual`` that holds the settings: "retention" and "lora" for the built-ins, "options"
    # for a plug-in, so a new strategy needs no new field on the job.
    settings_field: str | None = None
    needs_prior_tasks: bool = False  # whether it trains with inputs of the tasks learned before
    shardings: tuple[str, ...] = SHARDINGS
    # A job's learning rate when it sets none: each strategy trains different parameters (LoRA's adapters
    # start at zero and need a larger step than full weights), so one rate for all fits none of them.
    learning_rate: float = 1e-4


_SPECS: dict[str, StrategySpec] = {}


def check_sharding(spec: StrategySpec, sharding: str) -> None:
    """Refuse a sharding the strategy cannot train with (the API's check, and the engine's for direct use)."""
    if sharding not in spec.shardings:
        raise ValueError(f"sharding {sharding!r} does not work with strategy {spec.name!r}; use "
                         f"{' or '.join(map(repr, spec.shardings))}")


def register(spec: StrategySpec) -> StrategySpec:
    if spec.settings_field not in (None, *SETTINGS_FIELDS):
        raise ValueError(f"a strategy's settings go in one of {SETTINGS_FIELDS}, not {spec.settings_field!r}")
    _SPECS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    _SPECS.pop(name, None)


def get(name: str) -> StrategySpec:
    try:
        return _SPECS[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; one of {names()}") from None


def names() -> tuple[str, ...]:
    return tuple(_SPECS)


def specs() -> tuple[StrategySpec, ...]:
    return tuple(_SPECS.values())


SETTINGS_FIELDS = ("retention", "lora", "options")
DEFAULT_STRATEGY = "adaptive_svd"

register(StrategySpec(
    "adaptive_svd", "Full fine-tuning constrained to the directions earlier tasks do not use (the method).",
    Retention, "retention", needs_prior_tasks=True))
register(StrategySpec("full", "Plain sequential full fine-tuning (a baseline)."))
# LoRA's adapters start at zero: at full fine-tuning's rate a real model's first chat task was not learned in
# a job's steps, at ten times that it was (bench/RESULTS.md).
register(StrategySpec("lora", "PEFT LoRA adapters, merged into the weights (a baseline).", LoraSettings, "lora",
                      shardings=("ddp",), learning_rate=1e-3))
