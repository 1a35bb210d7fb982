from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.schemas import StrictModel
from app.jobs.schemas import Gates
from app.lineages.gates import default_gates
from app.lineages.suites import GENERAL, MIN_BASE_RIGHT, SAFETY

LINEAGE_ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$"
# The fields that name one suite's file each, from before suites were a map: field -> file purpose.
SUITE_FILE_FIELDS = {"reference_file": GENERAL.purpose, "safety_file": SAFETY.purpose}
SuiteFiles = dict[Annotated[str, StringConstraints(min_length=1, max_length=32)],
                  Annotated[str, StringConstraints(min_length=1, max_length=64)]]
SUITES_DESCRIPTION = ("Evaluation-suite data by file purpose ('reference', 'general', 'safety', or a plug-in suite's): "
                      "purpose -> file id. reference_file and safety_file, when given, win.")


def chosen_suites(body: ModelCreate | SuitesUpdate) -> dict[str, tuple[str, str]]:
    """purpose -> (file id, the request field that named it), from the map and the one-suite fields."""
    chosen = {purpose: (file_id, f"suites.{purpose}") for purpose, file_id in (body.suites or {}).items()}
    for field, purpose in SUITE_FILE_FIELDS.items():
        if (file_id := getattr(body, field)) is not None:
            chosen[purpose] = (file_id, field)
    return chosen


class ModelCreate(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": "support-bot", "base_model": "/models/tiny-llama", "gates": {"max_forgetting": 0.1}}]})

    id: str = Field(pattern=LINEAGE_ID_PATTERN, description="The lineage id; no ':' (that separates versions).")
    base_model: str = Field(min_length=1, max_length=1024,
                            description="A local Hugging Face directory inside the allowed roots, or a hub id.")
    gates: Gates | None = Field(None, description="Default gates for this lineage's jobs. Left out: the default "
                                "set, " + ", ".join(f"{k} {v}" for k, v in default_gates().items())
                                + f" (skipped where the base answers under {MIN_BASE_RIGHT} of the general "
                                "questions right); "
                                "{} for none.")
    reference_file: str | None = Field(None, min_length=1, max_length=64,
                                       description="A 'reference' file: texts for general-ability perplexity "
                                                   "(default: a built-in set).")
    safety_file: str | None = Field(None, min_length=1, max_length=64,
                                    description="A 'safety' file: the safety suite (default: a built-in suite).")
    suites: SuiteFiles | None = Field(None, description=SUITES_DESCRIPTION)


class SuitesUpdate(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"safety_file": "file-abc123"}]})

    reference_file: str | None = Field(None, min_length=1, max_length=64,
                                       description="A 'reference' file: texts for general-ability perplexity.")
    safety_file: str | None = Field(None, min_length=1, max_length=64,
                                    description="A 'safety' file: harmful prompts to refuse, benign ones to answer.")
    suites: SuiteFiles | None = Field(None, description=SUITES_DESCRIPTION)


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "sculpt"
    base_model: str
    head: int = Field(description="The version that jobs train from and that serves.")
    fine_tuned_model: str = Field(description="The head as '<id>:v<n>'.")
    versions: int = Field(description="How many versions the lineage holds.")
    tasks: list[str] = Field(description="Tasks the head knows: those learned along its chain (the head, its "
                                         "parent, ...), in order.")
    gates: dict[str, Any] = Field(default_factory=dict)
    reference_file: str | None = Field(None, description="The 'reference' file of suites, if one was chosen.")
    safety_file: str | None = Field(None, description="The 'safety' file of suites, if one was chosen.")
    suites: dict[str, str] = Field(default_factory=dict, description="The lineage's evaluation-suite files: "
                                   "file purpose -> file id. Suites not named use their built-in data.")


class VersionObject(BaseModel):
    id: str = Field(description="'<model>:v<n>'.")
    object: Literal["model.version"] = "model.version"
    created: int = Field(description="When the version was made (Unix seconds), as OpenAI's model objects have.")
    owned_by: str = "sculpt"
    model: str
    version: int
    parent_version: int | None
    is_head: bool
    status: str = Field(description="'base', 'promoted' (passed its gates) or 'rejected' (kept, not promoted).")
    job_id: str | None
    task: str | None
    strategy: str | None
    checkpoint_uri: str | None = Field(description="Where the checkpoint is stored; null once it is deleted.")
    checkpoint_sha256: str | None
    deleted: bool = Field(False, description="Its checkpoint was deleted; the row stays for lineage and audit.")
    deleted_at: int | None = None
    pinned: bool = Field(False, description="Kept by the retention policy whatever its age.")
    retention: dict[str, Any]
    metrics: dict[str, Any]
    gate_verdict: dict[str, Any]
    created_at: int


class HeadChangeRequest(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"version": 2, "reason": "roll back: v3 regressed"}]})

    version: int = Field(ge=1, le=2**31 - 1)
    reason: str = Field(min_length=1, max_length=2000)
    force: bool = Field(False, description="Needed to promote a version its gates rejected, "
                                           "or to move the head while a job on the lineage runs.")


class HeadChangeObject(BaseModel):
    object: Literal["model.head_change"] = "model.head_change"
    id: str | None = Field(None, description="'headchange-<n>', as the lineage's webhook names it.")
    model: str
    from_version: int | None
    to_version: int
    reason: str
    actor: str
    job_id: str | None
    created_at: int
    webhook_deliveries: list[dict[str, Any]] | None = Field(
        None, description="Each attempt to post this change to the lineage's webhook_url.")


class EvaluationsObject(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "object": "model.evaluations", "model": "support-bot", "version": 3, "tasks": ["refunds", "shipping"],
        "versions": [2, 3], "matrix": [[0.82, None], [0.8, 0.77]],
        "metric": {"refunds": "exact_match", "shipping": "exact_match"}, "acc": 0.785, "bwt": -0.02,
        "forgetting": {"refunds": 0.02}, "general": {"perplexity": 12.4, "perplexity_ratio": 1.03},
        "safety": {"refusal_rate": 0.95, "over_refusal_rate": 0.05},
    }]})

    object: Literal["model.evaluations"] = "model.evaluations"
    model: str
    version: int = Field(description="The version that acc, bwt, fwt, forgetting, general and safety describe "
                                     "(the head unless ?version= asked for another): its chain's tasks, in order.")
    tasks: list[str] = Field(description="Tasks some version learned: the chain of `version`'s first, in order.")
    versions: list[int]
    matrix: list[list[float | None]] = Field(description="matrix[r][i]: score of versions[r] on tasks[i].")
    metric: dict[str, str] = Field(description="The metric of each task.")
    acc: float | None
    bwt: float | None
    fwt: float | None = Field(None, description="Forward transfer: mean over tasks after the first of (score just "
                                                "before training on it − the base model's score on it).")
    forgetting: dict[str, float]
    general: dict[str, Any]
    safety: dict[str, Any]
    suites: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Every evaluation suite's figures for that version, by suite name (general "
        "and safety repeat two of them); general_answers adds 'changed': a few answers that went wrong, beside the "
        "base's.")
    unevaluable: dict[str, str] = Field(
        default_factory=dict, description="Tasks whose data was deleted, with why: their scores stay, later "
                                          "versions are no longer evaluated on them.")
    not_measured: dict[str, str] = Field(
        default_factory=dict, description="Measures this lineage's suites cannot take, with why (general_kept "
                                          "where the base answers too few general questions right): their "
                                          "gates cannot judge its versions.")
