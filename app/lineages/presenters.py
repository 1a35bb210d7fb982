"""Lineage, version and head-change rows to API objects."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from app.core.db.tables import HeadChange, Model, ModelVersion
from app.core.timeutil import unix
from app.jobs.service import fine_tuned_model_name
from app.lineages.schemas import HeadChangeObject, ModelObject, VersionObject
from app.lineages.service import suite_figures
from app.lineages.suites import GENERAL, SAFETY

HEAD_CHANGE_PREFIX = "headchange-"


def model_object(row: Model, versions: int, tasks: list[str]) -> ModelObject:
    suites = dict(row.suites or {})
    return ModelObject(id=row.id, created=unix(row.created_at), base_model=row.base_model,
                       head=row.head_version, fine_tuned_model=fine_tuned_model_name(row.id, row.head_version),
                       versions=versions, tasks=tasks, gates=row.gates or {},
                       reference_file=suites.get(GENERAL.purpose), safety_file=suites.get(SAFETY.purpose),
                       suites=suites)


# What ?expand= may add to a version object; left out, it is a summary whose size does not grow with the model
# or the suites (clients list models often).
EXPANSIONS = ("retention", "answers")
def _metrics(metrics: dict[str, Any], answers: bool) -> dict[str, Any]:
    if answers:
        return metrics
    return {key: suite_figures(value) if isinstance(value, dict) else value for key, value in metrics.items()}


def _retention(retention: dict[str, Any], layers: bool) -> dict[str, Any]:
    return retention if layers else {key: value for key, value in retention.items() if key != "matrices"}


def version_object(row: ModelVersion, head: int, expand: Collection[str] = ()) -> VersionObject:
    """A version; per-matrix retention and every suite answer only when ``expand`` names them."""
    stored = row.deletion is None  # one being deleted already claims no checkpoint
    return VersionObject(id=fine_tuned_model_name(row.model_id, row.version), model=row.model_id,
                         version=row.version, parent_version=row.parent_version, is_head=row.version == head,
                         status=row.status, job_id=row.job_id, task=row.task_name, strategy=row.strategy,
                         checkpoint_uri=row.checkpoint_uri if stored else None,
                         checkpoint_sha256=row.checkpoint_sha256 if stored else None, deleted=not stored,
                         deleted_at=unix(row.deleted_at), pinned=bool(row.pinned),
                         retention=_retention(row.retention or {}, "retention" in expand),
                         metrics=_metrics(row.metrics or {}, "answers" in expand),
                         gate_verdict=row.gate_verdict or {}, created=unix(row.created_at),
                         created_at=unix(row.created_at))


def head_change_object(row: HeadChange) -> HeadChangeObject:
    return HeadChangeObject(id=f"{HEAD_CHANGE_PREFIX}{row.id}", model=row.model_id, from_version=row.from_version,
                            to_version=row.to_version, reason=row.reason, actor=row.actor, job_id=row.job_id,
                            created_at=unix(row.created_at), webhook_deliveries=row.webhook_deliveries)
