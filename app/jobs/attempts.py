"""A job's run on a worker, as the jobs table records it: which job a lineage runs next, an attempt and its
lease, the phase, progress and events while it runs, and its end. The worker calls these; each is its own
transaction.

Every job ends through ``finish``, success and failure alike: one place sets the terminal status, clears
the lease, logs the last event and starts the webhook delivery after the commit. A success records its
version in the same transaction (``record``), so a version never exists without its job having ended, nor
the other way round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.core.db.session import rows_matched, session_scope
from app.core.db.tables import Job, utcnow
from app.core.enums import PENDING_STATUSES, EventType
from app.jobs.service import add_event
from app.lineages import lock
from app.webhooks.dispatch import notify_terminal

log = logging.getLogger("sculpt.jobs")

MAX_ATTEMPTS = 3


def next_pending(model_id: str) -> tuple[str, str] | None:
    """(id, queue) of the lineage's earliest job that has not ended: lineages run strictly in submission order."""
    with session_scope() as session:
        row = session.execute(select(Job.id, Job.queue)
                              .where(Job.model_id == model_id, Job.status.in_(PENDING_STATUSES))
                              .order_by(Job.seq).limit(1)).first()
        return None if row is None else (row.id, row.queue)


def job_lineage(job_id: str) -> str | None:
    with session_scope() as session:
        return session.scalar(select(Job.model_id).where(Job.id == job_id))


def start_attempt(job_id: str, owner: str) -> Job | None:
    """Take the job's lease; None when it ended or a live worker holds it."""
    now = utcnow()
    with session_scope() as session:
        taken = rows_matched(session, (
            update(Job)
            .where(Job.id == job_id, Job.status.in_(PENDING_STATUSES),
                   or_(Job.lease_owner.is_(None), Job.lease_owner == owner, Job.lease_expires_at < now))
            .values(status="running", phase="loading", lease_owner=owner, lease_expires_at=lock.lease_expiry(),
                    heartbeat_at=now, attempts=Job.attempts + 1, started_at=now, progress={"phase": "loading"})
        )) == 1
        if not taken:
            return None
        job = session.scalars(select(Job).where(Job.id == job_id)).one()
        session.expunge(job)
    return job


def renew_leases(model_id: str, job_id: str | None, owner: str) -> bool:
    """Extend the lineage's lock and the running job's lease together; False when another worker has taken
    the lineage over."""
    with session_scope() as session:
        expiry = lock.lease_expiry()
        held = lock.renew(session, model_id, owner, expiry)
        if job_id is not None:
            session.execute(update(Job).where(Job.id == job_id, Job.lease_owner == owner)
                            .values(lease_expires_at=expiry, heartbeat_at=utcnow()))
        return held


def set_base_version(job_id: str, version: int) -> None:
    """The version this attempt trains from (the head when it started)."""
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(base_version=version))


def set_phase(job_id: str, phase: str) -> None:
    with session_scope() as session:
        job = session.scalars(select(Job).where(Job.id == job_id)).one()
        job.phase = phase
        job.progress = {"phase": phase}  # a new phase starts from nothing: no figures of the one before
    log_event(job_id, f"Phase: {phase}", data={"phase": phase})


def write_progress(job_id: str, progress: dict[str, Any], metrics: Sequence[dict[str, Any]] = ()) -> None:
    """The job row's progress and the loss-curve points since the last write, one metrics event each."""
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(progress=progress))
        for point in metrics:
            add_event(session, job_id, _metrics_message(point), type=EventType.METRICS, data=point)


def _metrics_message(metrics: dict[str, Any]) -> str:
    valid = "" if metrics.get("valid_loss") is None else f" valid_loss={metrics['valid_loss']:.4f}"
    return (f"Step {metrics['step']}/{metrics['total_steps']}: loss={metrics['loss']:.4f}{valid}"
            f" lr={metrics['lr']:.2e} tokens/s={metrics['tokens_per_second']:.0f}")


def cancel_requested(job_id: str) -> bool:
    with session_scope() as session:
        return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def log_event(job_id: str, message: str, *, type: EventType = EventType.MESSAGE, data: dict | None = None,
              level: str = "info") -> None:
    """One event of the running job, committed at once (``add_event`` in its own transaction)."""
    with session_scope() as session:
        add_event(session, job_id, message, type=type, data=data, level=level)


def finish(job_id: str, status: str, message: str, *, error_code: str | None = None,
           error_param: str | None = None, level: str = "info", progress: dict | None = None,
           record: Callable[[Session], dict[str, Any]] | None = None, **fields: Any) -> None:
    """End the job with ``status``; ``record`` writes what commits with the ending (a new version) in
    the same transaction and returns more job fields to set. The webhook goes out after the commit."""
    with session_scope() as session:
        fields = {**fields, **(record(session) if record else {})}
        job = session.scalars(select(Job).where(Job.id == job_id)).one()
        job.status, job.finished_at = status, utcnow()
        job.lease_owner = job.lease_expires_at = None
        job.error_code, job.error_param = error_code, error_param
        job.error_message = message if error_code else None
        job.phase = None  # a terminal job has no running phase
        job.progress = {**(job.progress or {}), **(progress or {}), "phase": None, "eta_seconds": 0}
        for key, value in fields.items():
            setattr(job, key, value)
        add_event(session, job_id, message, level=level, data={"status": status, "error_code": error_code})
    log.info("job %s %s: %s", job_id, status, message)
    notify_terminal(job_id)
