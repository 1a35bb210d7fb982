"""Fine-tuning jobs: create (validated, idempotent), enqueue, list, events, cancel, checkpoints.

Job state lives in the jobs table; the broker only carries the job id. A job whose message could
not be sent stays ``queued`` with ``enqueued_at`` NULL and the worker's reconciler sends it later.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.broker import send_job
from app.core.db.session import rows_matched
from app.core.db.tables import Job, JobEvent, ModelVersion, utcnow
from app.core.enums import TERMINAL_STATUSES, EventType
from app.core.errors import Conflict, NotFound, RateLimited, Unprocessable
from app.core.ids import DB_INT_MAX, ascii_number, new_id
from app.core.settings import get_settings
from app.files.datasets import MIN_TRAINING_RECORDS
from app.files.service import usable_file
from app.jobs.held_out import check_disjoint
from app.jobs.schemas import JobCreate
from app.jobs.spec import Continual, Hyperparameters, check_devices
from app.lineages.service import find_version, get_model, learned_tasks
from app.webhooks.transport import check_webhook_url
from app.workers.service import waiting_for

log = logging.getLogger("sculpt.jobs")

MODEL_REF = re.compile(r"^(?P<id>[^:]+)(:v(?P<version>[0-9]{1,9}))?$")
EVENT_PREFIX = "ftevent-"
QUEUE_FULL_RETRY_SECONDS = 30
JOB_ADMISSION_LOCK = 0x5C01_70B5  # any constant; names the lock below in pg_locks


def parse_model_ref(reference: str) -> tuple[str, int | None]:
    """'support-bot' -> ('support-bot', None); 'support-bot:v3' -> ('support-bot', 3)."""
    match = MODEL_REF.match(reference)
    if not match:
        raise Unprocessable("model must be '<id>' or '<id>:v<n>'", param="model", code="invalid_model")
    version = match.group("version")
    return match.group("id"), int(version) if version else None


def fine_tuned_model_name(model_id: str, version: int) -> str:
    return f"{model_id}:v{version}"


def request_hash(body: JobCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json", exclude_none=True), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def task_name(continual: dict, suffix: str | None, training_file: str) -> str:
    """The task a job teaches: ``continual.task``, else the job's suffix, else its training file's id."""
    return continual.get("task") or suffix or training_file


def add_event(session: Session, job_id: str, message: str, *, level: str = "info",
              type: EventType = EventType.MESSAGE, data: dict | None = None) -> JobEvent:
    """Append an event to a job's log (the caller commits): the one writer of job events, API and worker."""
    event = JobEvent(job_id=job_id, level=level, type=EventType(type).value, message=message, data=data)
    session.add(event)
    return event


def _check_task_name(session: Session, model_id: str, task: str) -> None:
    # Only the head's chain counts: a task whose version was rejected, or rolled back past, can be learned again.
    learned = next((t for t in learned_tasks(session, model_id) if t.name == task), None)
    if learned:
        raise Conflict(f"Model '{model_id}' already learned a task named '{task}' (in v{learned.version}, on the "
                       "head's chain); name this one differently (continual.task)",
                       param="continual.task", code="task_exists")
    pending = session.scalars(select(Job).where(Job.model_id == model_id, Job.status.not_in(TERMINAL_STATUSES)))
    for job in pending:
        if job.continual.get("task") == task:
            raise Conflict(f"Job {job.id} on this model already trains a task named '{task}'",
                           param="continual.task", code="task_exists")


def _replay(session: Session, key: str, digest: str) -> Job | None:
    existing = session.scalar(select(Job).where(Job.idempotency_key == key))
    if existing is not None and existing.request_hash != digest:
        raise Conflict("This Idempotency-Key was used with a different request body",
                       param="Idempotency-Key", code="idempotency_key_reused")
    return existing


def _serialise_admission(session: Session) -> None:
    """Hold a lock from counting the queue until the new job commits, so requests admitting jobs at
    once cannot together push the queue past max_queued_jobs. PostgreSQL only: on the embedded,
    single-user SQLite mode the cap may be passed by the few requests in flight."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": JOB_ADMISSION_LOCK})


def create_job(session: Session, body: JobCreate, idempotency_key: str | None = None) -> tuple[Job, bool]:
    """Validate and record a job as ``queued``; returns (job, created). Does not enqueue it."""
    digest = request_hash(body)
    if idempotency_key:
        existing = _replay(session, idempotency_key, digest)
        if existing is not None:
            return existing, False
    model_id, requested = parse_model_ref(body.model)
    model = get_model(session, model_id, param="model")
    if requested is not None:
        if find_version(session, model_id, requested) is None:
            raise NotFound(f"Model '{model_id}' has no version {requested}", param="model",
                           code="version_not_found")
        if model.head_version != requested:
            raise Conflict(f"The head of '{model_id}' is v{model.head_version}, not v{requested}",
                           param="model", code="head_moved")
    training = usable_file(session, body.training_file, "fine-tune", "training_file")
    if body.validation_file is not None:
        check_disjoint(training, usable_file(session, body.validation_file, "fine-tune", "validation_file"))
    elif training.record_count is not None and training.record_count < MIN_TRAINING_RECORDS:
        raise Unprocessable(f"File '{training.id}' holds {training.record_count} record(s); without a "
                            f"validation_file a job needs at least {MIN_TRAINING_RECORDS} (one is held out for "
                            "evaluation): add records or pass a validation_file", param="training_file",
                            code="too_few_records")
    if body.webhook_url is not None:
        check_webhook_url(body.webhook_url, get_settings())
    try:
        check_devices((body.continual or Continual()).devices, (body.hyperparameters or Hyperparameters()).resolved(
            "batch_size"))
    except ValueError as exc:
        raise Unprocessable(str(exc), param="continual.devices", code="invalid_value") from exc
    _serialise_admission(session)
    if idempotency_key:
        # Checked again under the admission lock: a concurrent request with this key may have committed
        # its job while this one validated, and must be replayed, not refused as a task that exists.
        existing = _replay(session, idempotency_key, digest)
        if existing is not None:
            return existing, False
    queued = session.scalar(select(func.count()).select_from(Job).where(Job.status == "queued")) or 0
    if queued >= get_settings().max_queued_jobs:
        raise RateLimited(f"{queued} jobs are already queued; retry later", code="queue_full",
                          headers={"Retry-After": str(QUEUE_FULL_RETRY_SECONDS)})

    continual = (body.continual or Continual()).model_dump(mode="json", exclude_none=True)
    continual["task"] = task_name(continual, body.suffix, training.id)
    continual["gates"] = {**(model.gates or {}), **continual.get("gates", {})}
    try:
        _check_task_name(session, model_id, continual["task"])
    except Conflict:
        # On SQLite the admission lock is no lock: a concurrent twin with this key may have committed its job
        # (and so its task) since the check above; this request is its replay, not a second task.
        existing = _replay(session, idempotency_key, digest) if idempotency_key else None
        if existing is None:
            raise
        return existing, False
    hyperparameters = (body.hyperparameters or Hyperparameters()).model_dump(mode="json")

    job = Job(id=new_id("ftjob"), model_id=model_id, requested_version=requested, status="queued",
              idempotency_key=idempotency_key, request_hash=digest, training_file=training.id,
              validation_file=body.validation_file, hyperparameters=hyperparameters, continual=continual,
              seed=body.seed if body.seed is not None else 0, suffix=body.suffix,
              user_metadata=body.metadata, queue=continual["queue"], progress={},
              webhook_url=body.webhook_url, webhook_pending=body.webhook_url is not None)
    try:  # the flush too: on SQLite the admission lock is no lock, and a concurrent twin fails it
        session.add(job)
        session.flush()
        add_event(session, job.id, f"Created fine-tuning job: {job.id}")
        if reason := waiting_for(session, job):  # said at once, rather than the job waiting silently
            job.progress = {"waiting_for": reason}
            add_event(session, job.id, f"The job cannot start yet: {reason} (GET /v1/workers lists the live ones)",
                      level="warn", data={"waiting_for": reason})
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        if idempotency_key:  # a concurrent request with the same key committed first
            existing = _replay(session, idempotency_key, digest)
            if existing is not None:
                return existing, False
        raise Conflict("A concurrent request created a job that conflicts with this one; retry it",
                       code="concurrent_create") from exc
    return job, True


def note_waiting(session: Session, job: Job, reason: str | None) -> bool:
    """Say why a queued job cannot start yet (``reason``; None: a live worker can now take it), on its progress
    and in an event (the caller commits). Only while it is still queued: a worker that starts it meanwhile
    writes its own progress. Returns whether it was said."""
    if not rows_matched(session, update(Job).where(Job.id == job.id, Job.status == "queued")
                        .values(progress={**(job.progress or {}), "waiting_for": reason})):
        return False
    message = f"The job cannot start yet: {reason}" if reason else "A live worker can now take the job"
    add_event(session, job.id, message, level="warn" if reason else "info", data={"waiting_for": reason})
    return True


def enqueue(job: Job) -> bool:
    """Send the job to its queue; on failure leave it for the reconciler. Returns whether it was sent."""
    try:
        send_job(job.id, job.queue)
    except Exception as exc:  # noqa: BLE001 - the broker being down must not lose or fail an accepted job
        log.warning("could not enqueue %s (%s); the reconciler will retry", job.id, exc)
        return False
    return True


def _no_such_job(job_id: str) -> NotFound:
    return NotFound(f"No fine-tuning job with id '{job_id}'", param="fine_tuning_job_id", code="job_not_found")


def get_job(session: Session, job_id: str) -> Job:
    job = session.scalar(select(Job).where(Job.id == job_id))
    if job is None:
        raise _no_such_job(job_id)
    return job


def list_jobs(session: Session, after: str | None, limit: int,
              metadata: dict[str, str] | None = None) -> tuple[list[Job], bool]:
    """Newest first; ``after`` is the id of the last job of the previous page."""
    query = select(Job)
    if after:
        cursor = session.scalar(select(Job.seq).where(Job.id == after))
        if cursor is None:
            raise NotFound(f"No fine-tuning job with id '{after}'", param="after", code="job_not_found")
        query = query.where(Job.seq < cursor)
    for key, value in (metadata or {}).items():
        query = query.where(Job.user_metadata[key].as_string() == value)
    rows = session.scalars(query.order_by(Job.seq.desc()).limit(limit + 1)).all()
    return list(rows[:limit]), len(rows) > limit


def parse_event_id(event_id: str, param: str = "after") -> int:
    number = ascii_number(event_id.removeprefix(EVENT_PREFIX))
    if number is None:
        raise Unprocessable(f"'{event_id}' is not an event id (ftevent-<n>)", param=param)
    if number > DB_INT_MAX:
        raise NotFound(f"No event with id '{event_id}'", param=param, code="event_not_found")
    return number


def list_events(session: Session, job_id: str, after: str | None, limit: int, type: EventType | None,
                order: str = "desc") -> tuple[list[JobEvent], bool]:
    """Newest first like OpenAI (``order=asc`` to follow a job from its start); ``after`` is an event id."""
    if session.scalar(select(Job.seq).where(Job.id == job_id)) is None:  # the row itself is not needed
        raise _no_such_job(job_id)
    query = select(JobEvent).where(JobEvent.job_id == job_id)
    if type:
        query = query.where(JobEvent.type == type)
    ascending = order == "asc"
    if after:
        cursor = parse_event_id(after)
        query = query.where(JobEvent.id > cursor if ascending else JobEvent.id < cursor)
    query = query.order_by(JobEvent.id.asc() if ascending else JobEvent.id.desc()).limit(limit + 1)
    rows = session.scalars(query).all()
    return list(rows[:limit]), len(rows) > limit


def cancel_job(session: Session, job_id: str) -> Job:
    """Queued: cancelled at once. Running: flag it; the training loop ends it within a step."""
    job = get_job(session, job_id)
    now = utcnow()
    stopped = rows_matched(session, (
        update(Job).where(Job.id == job_id, Job.status.in_(("validating_files", "queued")))
        .values(status="cancelled", cancel_requested=True, finished_at=now)))
    if stopped:
        add_event(session, job_id, "Job cancelled before it started")
    else:
        session.refresh(job)
        if job.status in TERMINAL_STATUSES:
            raise Conflict(f"Job {job_id} already {job.status}", param="fine_tuning_job_id",
                           code="job_finished")
        if not job.cancel_requested:
            job.cancel_requested = True
            add_event(session, job_id, "Cancellation requested; the job stops at its next training step",
                      level="warn")
    session.commit()
    session.refresh(job)
    return job


def checkpoints(session: Session, job_id: str) -> list[tuple[Job, ModelVersion]]:
    """The checkpoint a job produced (its result version), if any and not deleted."""
    job = get_job(session, job_id)
    if job.result_version is None:
        return []
    version = session.scalar(select(ModelVersion).where(ModelVersion.model_id == job.model_id,
                                                        ModelVersion.version == job.result_version))
    return [(job, version)] if version and version.deletion is None else []
