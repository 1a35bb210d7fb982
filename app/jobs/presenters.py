"""Job, event and checkpoint rows to API objects: how a stored job looks on the wire."""

from __future__ import annotations

import time

from app.core.db.tables import Job, JobEvent, ModelVersion
from app.core.enums import TERMINAL_STATUSES, EventType
from app.core.timeutil import unix
from app.jobs.schemas import (
    CheckpointObject,
    EventObject,
    JobError,
    JobObject,
    JobResult,
    Progress,
    Webhook,
    WebhookDelivery,
)
from app.jobs.service import EVENT_PREFIX, fine_tuned_model_name

EVENT_LEVELS = {"info": "info", "warn": "warn", "warning": "warn", "error": "error"}


def _progress(job: Job) -> Progress:
    progress = dict(job.progress or {})
    progress.setdefault("phase", job.phase)
    if job.status in TERMINAL_STATUSES:  # an ended job is in no phase (rows ended before this kept their last)
        progress["phase"] = None
    if job.status != "queued":  # only a job that has not started waits for a worker
        progress["waiting_for"] = None
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
        validation_file=job.validation_file, result_files=job.result_files or [],
        trained_tokens=job.trained_tokens, seed=job.seed,
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
                       type=EventType.METRICS if row.type == EventType.METRICS else EventType.MESSAGE, data=row.data)


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
