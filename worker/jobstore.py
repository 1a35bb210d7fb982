"""The worker's reads and writes of job state: attempts, phases, progress, events, endings."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import or_, select, update

from app.core.db.session import session_scope
from app.core.db.tables import Job, JobEvent, utcnow
from worker.leases import _expiry
from worker.webhook_dispatch import notify_terminal

log = logging.getLogger("sculpt.worker")

PENDING = ("queued", "running")
TERMINAL = ("succeeded", "failed", "cancelled")
MAX_ATTEMPTS = 3


def next_pending(model_id: str) -> str | None:
    """The lineage's earliest job that has not ended: lineages run strictly in submission order."""
    with session_scope() as session:
        return session.scalar(
            select(Job.id).where(Job.model_id == model_id, Job.status.in_(PENDING)).order_by(Job.seq).limit(1)
        )


def add_event(job_id: str, message: str, *, type: str = "message", data: dict | None = None,
              level: str = "info") -> None:
    with session_scope() as session:
        session.add(JobEvent(job_id=job_id, message=message, type=type, data=data, level=level))


def start_attempt(job_id: str, owner: str) -> Job | None:
    """Take the job's lease; None when it ended or a live worker holds it."""
    now = utcnow()
    with session_scope() as session:
        taken = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.in_(PENDING),
                   or_(Job.lease_owner.is_(None), Job.lease_owner == owner, Job.lease_expires_at < now))
            .values(status="running", phase="loading", lease_owner=owner, lease_expires_at=_expiry(),
                    heartbeat_at=now, attempts=Job.attempts + 1, started_at=now, progress={"phase": "loading"})
        ).rowcount == 1
        if not taken:
            return None
        job = session.get(Job, _seq_of(session, job_id))
        session.expunge(job)
    return job


def _seq_of(session, job_id: str) -> int:
    return session.scalar(select(Job.seq).where(Job.id == job_id))


def set_phase(job_id: str, phase: str) -> None:
    with session_scope() as session:
        job = session.scalar(select(Job).where(Job.id == job_id))
        job.phase = phase
        job.progress = {**(job.progress or {}), "phase": phase}
    add_event(job_id, f"Phase: {phase}", data={"phase": phase})


def write_progress(job_id: str, progress: dict[str, Any], metrics: dict[str, Any] | None = None) -> None:
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(progress=progress))
        if metrics is not None:
            session.add(JobEvent(job_id=job_id, type="metrics", data=metrics,
                                 message=_metrics_message(metrics)))


def _metrics_message(metrics: dict[str, Any]) -> str:
    return (f"Step {metrics['step']}/{metrics['total_steps']}: loss={metrics['loss']:.4f}"
            f" lr={metrics['lr']:.2e} tokens/s={metrics['tokens_per_second']:.0f}")


def cancel_requested(job_id: str) -> bool:
    with session_scope() as session:
        return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def end(job_id: str, status: str, message: str, *, error_code: str | None = None,
        error_param: str | None = None, level: str = "info", **fields: Any) -> None:
    with session_scope() as session:
        job = session.scalar(select(Job).where(Job.id == job_id))
        job.status = status
        job.finished_at = utcnow()
        job.lease_owner = None
        job.lease_expires_at = None
        job.error_code = error_code
        job.error_message = message if error_code else None
        job.error_param = error_param
        job.phase = None  # a terminal job has no running phase
        job.progress = {**(job.progress or {}), "phase": None, "eta_seconds": 0}
        for key, value in fields.items():
            setattr(job, key, value)
        session.add(JobEvent(job_id=job_id, level=level, message=message,
                             data={"status": status, "error_code": error_code}))
    log.info("job %s %s: %s", job_id, status, message)
    notify_terminal(job_id)
