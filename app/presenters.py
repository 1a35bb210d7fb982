"""Rows to API objects: the one place that decides how a stored record looks on the wire."""

from __future__ import annotations

import time

from app.db.tables import File, HeadChange, Job, JobEvent, Model, ModelVersion
from app.schemas.files import FileObject
from app.schemas.jobs import (
    CheckpointObject,
    EventObject,
    JobError,
    JobObject,
    JobResult,
    Progress,
    Webhook,
    WebhookDelivery,
)
from app.schemas.models import HeadChangeObject, ModelObject, VersionObject
from app.services.jobs import EVENT_PREFIX, fine_tuned_model_name
from app.timeutil import unix

EVENT_LEVELS = {"info": "info", "warn": "warn", "warning": "warn", "error": "error"}


def file_object(row: File) -> FileObject:
    return FileObject(id=row.id, bytes=row.bytes, created_at=unix(row.created_at), filename=row.filename,
                      purpose=row.purpose, status=row.status, status_details=row.status_details,
                      lines=row.line_count, record_format=row.record_format, sha256=row.sha256)


def model_object(row: Model, versions: int, tasks: list[str]) -> ModelObject:
    return ModelObject(id=row.id, created=unix(row.created_at), base_model=row.base_model,
                       head=row.head_version, fine_tuned_model=fine_tuned_model_name(row.id, row.head_version),
                       versions=versions, tasks=tasks, gates=row.gates or {},
                       reference_file=row.reference_file_id, safety_file=row.safety_file_id)


def version_object(row: ModelVersion, head: int) -> VersionObject:
    return VersionObject(id=fine_tuned_model_name(row.model_id, row.version), model=row.model_id,
                         version=row.version, parent_version=row.parent_version, is_head=row.version == head,
                         status=row.status, job_id=row.job_id, task=row.task_name, strategy=row.strategy,
                         checkpoint_uri=row.checkpoint_uri, checkpoint_sha256=row.checkpoint_sha256,
                         retention=row.retention or {}, metrics=row.metrics or {},
                         gate_verdict=row.gate_verdict or {}, created_at=unix(row.created_at))


def head_change_object(row: HeadChange) -> HeadChangeObject:
    return HeadChangeObject(model=row.model_id, from_version=row.from_version, to_version=row.to_version,
                            reason=row.reason, actor=row.actor, job_id=row.job_id,
                            created_at=unix(row.created_at))


def _progress(job: Job) -> Progress:
    progress = dict(job.progress or {})
    progress.setdefault("phase", job.phase)
    return Progress.model_validate({k: progress.get(k) for k in Progress.model_fields})


def _estimated_finish(job: Job, progress: Progress) -> int | None:
    if job.status != "running" or progress.eta_seconds is None:
        return None
    return int(time.time() + progress.eta_seconds)


def job_object(job: Job) -> JobObject:
    progress = _progress(job)
    error = (JobError(code=job.error_code or "failed", message=job.error_message or "", param=job.error_param)
             if job.status == "failed" or job.error_code else None)
    requested = job.model_id if job.requested_version is None else fine_tuned_model_name(
        job.model_id, job.requested_version)
    return JobObject(
        id=job.id, model=requested, status=job.status, created_at=unix(job.created_at),
        finished_at=unix(job.finished_at), estimated_finish=_estimated_finish(job, progress),
        fine_tuned_model=(fine_tuned_model_name(job.model_id, job.result_version)
                          if job.result_version is not None else None),
        error=error, hyperparameters=job.hyperparameters or {}, training_file=job.training_file,
        validation_file=job.validation_file, trained_tokens=job.trained_tokens, seed=job.seed,
        suffix=job.suffix, metadata=job.user_metadata, continual=job.continual or {},
        base_version=job.base_version, cancel_requested=job.cancel_requested, progress=progress,
        result=JobResult.model_validate(job.result) if job.result else None, webhook=_webhook(job))


def _webhook(job: Job) -> Webhook | None:
    if not job.webhook_url:
        return None
    return Webhook(url=job.webhook_url,
                   deliveries=[WebhookDelivery.model_validate(d) for d in job.webhook_deliveries or []])


def event_object(row: JobEvent) -> EventObject:
    return EventObject(id=f"{EVENT_PREFIX}{row.id}", created_at=unix(row.created_at),
                       level=EVENT_LEVELS.get(row.level, "info"), message=row.message,
                       type="metrics" if row.type == "metrics" else "message", data=row.data)


def checkpoint_object(job: Job, version: ModelVersion) -> CheckpointObject:
    metrics = dict(version.metrics or {})
    step = int((job.progress or {}).get("total_steps") or (job.progress or {}).get("step") or 0)
    return CheckpointObject(id=f"ftckpt-{job.id.removeprefix('ftjob-')}-v{version.version}",
                            created_at=unix(version.created_at),
                            fine_tuned_model_checkpoint=fine_tuned_model_name(version.model_id, version.version),
                            fine_tuning_job_id=job.id, step_number=step,
                            metrics={"step": step, **{k: v for k, v in metrics.items()
                                                      if isinstance(v, (int, float))}},
                            checkpoint_uri=version.checkpoint_uri, checkpoint_sha256=version.checkpoint_sha256)
