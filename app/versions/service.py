"""Recording trained versions; downloading, deleting and retaining versions; deleting lineages.

A deletion is crash-safe by its order: the rows are marked first (a version ``deleting``, a lineage
``deleted_at``) and committed, so nothing half removed is ever served or trained from; then the files
go; then the version is marked ``deleted`` (a lineage's row is removed). ``finish_deletions`` (run
by the worker's reconciler) completes whatever a crash cut short.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.core.db.tables import HeadChange, Job, Model, ModelVersion, utcnow
from app.core.enums import TERMINAL_STATUSES
from app.core.errors import Conflict, NotFound
from app.core.faults import pause_at
from app.core.settings import get_settings
from app.core.storage import CHECKPOINTS, MANIFEST, get_storage
from app.core.timeutil import unix
from app.jobs.service import cancel_job
from app.lineages.lock import unheld_at
from app.lineages.service import add_learned_task, add_scores, find_version, get_model, get_version, set_head
from app.versions.archive import CheckpointArchive
from app.webhooks.transport import check_webhook_url


@dataclass
class TrainedVersion:
    """A version a job trained: its checkpoint, the task it learned and what it scored, with the gates' verdict."""

    version: int
    parent_version: int
    job_id: str
    strategy: str
    checkpoint_uri: str
    checkpoint_sha256: str
    retention: dict
    metrics: dict
    gate_verdict: dict  # promoted to head when it "passed"
    task_name: str
    task_position: int  # how many tasks the lineage had learned before
    training_file: str
    eval_uri: str  # the task's held-out records, which later versions are scored on
    metric: str
    labels: list[str] | None
    scores: dict[str, dict]  # task -> its result on this version, the new task's included


@dataclass
class Removal:
    version: int
    bytes: int


def next_version(session: Session, model_id: str) -> int:
    return (session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model_id)) or 0) + 1


def add_trained_version(session: Session, model: Model, trained: TrainedVersion) -> bool:
    """Insert the version, the task it learned and its scores, and move the head to it when its gates passed
    (the caller commits, with the job's end). Returns whether it was promoted."""
    promoted = bool(trained.gate_verdict["passed"])
    session.add(ModelVersion(
        model_id=model.id, version=trained.version, parent_version=trained.parent_version, job_id=trained.job_id,
        task_name=trained.task_name, strategy=trained.strategy, status="promoted" if promoted else "rejected",
        checkpoint_uri=trained.checkpoint_uri, checkpoint_sha256=trained.checkpoint_sha256,
        retention=trained.retention, metrics=trained.metrics, gate_verdict=trained.gate_verdict))
    add_learned_task(session, model.id, trained.version, name=trained.task_name, position=trained.task_position,
                     training_file=trained.training_file, eval_uri=trained.eval_uri, metric=trained.metric,
                     labels=trained.labels)
    add_scores(session, model.id, trained.version, trained.scores, trained.metric)
    if promoted:
        set_head(session, model, trained.version, f"job {trained.job_id} learned {trained.task_name}; gates passed",
                 "worker", job_id=trained.job_id)
    return promoted


def add_metrics(session: Session, model_id: str, version: int, results: dict[str, dict]) -> None:
    """Suite results measured on a version after it was recorded (a base's, before training from it, the
    baseline later versions meet); the caller commits."""
    row = find_version(session, model_id, version)
    if row is None:
        raise LookupError(f"'{model_id}' has no version {version}")
    row.metrics = {**(row.metrics or {}), **results}


def stored_key(row: ModelVersion) -> str | None:
    """The version's checkpoint key in the artifact store; None for a base model kept elsewhere."""
    return get_storage().key_of(row.checkpoint_uri)


def _live_version(session: Session, model_id: str, version: int) -> ModelVersion:
    row = get_version(session, model_id, version)
    if row.deletion is not None:
        raise NotFound(f"Version {version} of '{model_id}' was deleted; its checkpoint is gone", param="version",
                       code="version_deleted")
    return row


def content_archive(session: Session, model_id: str, version: int) -> tuple[CheckpointArchive, str]:
    """The version's checkpoint as a deterministic tar, and its ETag (the manifest's sha256)."""
    row = _live_version(session, model_id, version)
    key = stored_key(row)
    if key is None:
        raise NotFound(f"Version {version} of '{model_id}' is the base model '{row.checkpoint_uri}', which Sculpt "
                       "does not store; get it where it came from", param="version", code="checkpoint_not_stored")
    storage = get_storage()
    try:
        manifest = storage.read_bytes(f"{key}/{MANIFEST}")
    except FileNotFoundError as exc:
        raise NotFound(f"The checkpoint of {model_id}:v{version} is missing from the artifact store",
                       param="version", code="checkpoint_missing") from exc
    digest = hashlib.sha256(manifest).hexdigest()
    if row.checkpoint_sha256 and digest != row.checkpoint_sha256:
        raise Conflict(f"The stored manifest of {model_id}:v{version} does not match the sha256 recorded for it",
                       param="version", code="checkpoint_corrupt")
    files = json.loads(manifest)["bytes"]
    return CheckpointArchive(storage, key, files, MANIFEST, manifest, unix(row.created_at)), digest


def _active_jobs(session: Session, model_id: str) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.model_id == model_id, Job.status.not_in(TERMINAL_STATUSES))
                                .order_by(Job.seq)))


def _trained_from(session: Session, model_id: str, version: int) -> Job | None:
    """A queued or running job that trains from ``version`` (its recorded base, or the head it asked for)."""
    return next((job for job in _active_jobs(session, model_id)
                 if version in (job.base_version, job.requested_version)), None)


def _blocker(session: Session, model: Model, row: ModelVersion) -> tuple[str, str] | None:
    """(code, why) the version may not be deleted, or None."""
    if row.version == model.head_version:
        return "version_is_head", (f"v{row.version} is the head of '{model.id}'; promote or roll back to another "
                                   "version first")
    if row.status == "base":
        return "version_is_base", f"v{row.version} is the base model every version of '{model.id}' descends from"
    job = _trained_from(session, model.id, row.version)
    if job is not None:
        return "version_in_use", f"job {job.id} ({job.status}) trains from v{row.version}"
    return None


def _mark_deleting(session: Session, rows: list[ModelVersion]) -> None:
    now = utcnow()
    for row in rows:
        if row.deletion is None:
            row.deletion, row.deleted_at = "deleting", now
    session.commit()


def _remove_files(row: ModelVersion) -> int:
    """Remove a marked version's checkpoint files, manifest first (so no reader of the store takes what is
    left for a checkpoint); returns the bytes freed."""
    key = stored_key(row)
    if key is None:
        return 0
    storage = get_storage()
    sizes = storage.sizes(key)
    for name in sorted(sizes, key=lambda n: n != MANIFEST):
        storage.delete(f"{key}/{name}")
        pause_at("deleting")
    storage.delete(key)
    return sum(sizes.values())


def _finish_version(session: Session, row: ModelVersion) -> int:
    freed = _remove_files(row)
    row.deletion = "deleted"
    session.commit()
    return freed


def delete_version(session: Session, model_id: str, version: int) -> tuple[ModelVersion, int]:
    """Remove the checkpoint; the row stays, marked deleted. Returns it and the bytes freed."""
    model = get_model(session, model_id)
    row = get_version(session, model_id, version)
    if row.deletion == "deleted":
        return row, 0
    blocker = _blocker(session, model, row)
    if blocker and row.deletion is None:
        code, why = blocker
        raise Conflict(f"Cannot delete {model_id}:v{version}: {why}", param="version", code=code)
    _mark_deleting(session, [row])
    return row, _finish_version(session, row)


def set_pinned(session: Session, model_id: str, version: int, pinned: bool) -> ModelVersion:
    row = _live_version(session, model_id, version) if pinned else get_version(session, model_id, version)
    row.pinned = pinned
    session.commit()
    return row


def set_retention(session: Session, model_id: str, keep_last: int | None) -> Model:
    model = get_model(session, model_id)
    model.keep_last = keep_last
    session.commit()
    return model


def pinned_versions(session: Session, model_id: str) -> list[int]:
    return list(session.scalars(select(ModelVersion.version).where(
        ModelVersion.model_id == model_id, ModelVersion.pinned.is_(True), ModelVersion.deletion.is_(None))
        .order_by(ModelVersion.version)))


def retention_plan(session: Session, model: Model) -> list[ModelVersion]:
    """The versions the policy lets go: all but the ``keep_last`` newest stored ones, never the base, the
    head, a pinned version or one a queued or running job trains from."""
    if model.keep_last is None:
        return []
    stored = list(session.scalars(select(ModelVersion).where(
        ModelVersion.model_id == model.id, ModelVersion.deletion.is_(None), ModelVersion.status != "base")
        .order_by(ModelVersion.version.desc())))
    return [row for row in stored[model.keep_last:]
            if not row.pinned and _blocker(session, model, row) is None]


def _sizes_of(rows: list[ModelVersion]) -> list[Removal]:
    storage = get_storage()
    return [Removal(row.version, sum(storage.sizes(key).values()) if (key := stored_key(row)) else 0)
            for row in rows]


def sweep_retention(session: Session, model_id: str, dry_run: bool) -> tuple[Model, list[Removal]]:
    """Delete (or, on a dry run, list) what the lineage's policy lets go, with the bytes each frees."""
    model = get_model(session, model_id)
    doomed = retention_plan(session, model)
    if dry_run:
        return model, _sizes_of(doomed)
    _mark_deleting(session, doomed)
    return model, [Removal(row.version, _finish_version(session, row)) for row in doomed]


def delete_lineage(session: Session, model_id: str, force: bool) -> tuple[int, bool]:
    """Remove a lineage, its versions' checkpoints and its jobs. With ``force``, its queued jobs are
    cancelled first and its running ones asked to stop; the lineage is hidden at once and removed as soon
    as none runs. Returns (bytes freed, whether it is all gone already)."""
    model = get_model(session, model_id)
    active = _active_jobs(session, model_id)
    if active and not force:
        raise Conflict(f"Job {active[0].id} is {active[0].status} on '{model_id}'; wait for it, cancel it, or pass "
                       "force=true to cancel its jobs and delete", param="force", code="lineage_busy")
    for job in active:
        cancel_job(session, job.id)
    versions = list(session.scalars(select(ModelVersion).where(ModelVersion.model_id == model_id)))
    model.deleted_at = utcnow()
    _mark_deleting(session, versions)
    return _finish_lineage(session, model_id)


def _finish_lineage(session: Session, model_id: str) -> tuple[int, bool]:
    """Remove a marked lineage's files and rows unless a worker still runs one of its jobs."""
    unheld = session.scalar(select(Model.id).where(Model.id == model_id, unheld_at(utcnow())))
    if unheld is None or _active_jobs(session, model_id):
        return 0, False
    freed = sum(_finish_version(session, row) for row in session.scalars(select(ModelVersion).where(
        ModelVersion.model_id == model_id, ModelVersion.deletion == "deleting")).all())
    get_storage().delete(f"{CHECKPOINTS}/{model_id}")  # and whatever a crashed save left there
    # The database removes the lineage's versions, tasks, scores, history, jobs and their events with it.
    session.execute(delete(Model).where(Model.id == model_id))
    session.commit()
    return freed, True


def finish_deletions(session: Session) -> list[Removal]:
    """Complete deletions a crash cut short, then apply every lineage's retention policy."""
    done = []
    for model_id in session.scalars(select(Model.id).where(Model.deleted_at.is_not(None))).all():
        _finish_lineage(session, model_id)
    for row in session.scalars(select(ModelVersion).join(Model, Model.id == ModelVersion.model_id).where(
            ModelVersion.deletion == "deleting", Model.deleted_at.is_(None))).all():
        done.append(Removal(row.version, _finish_version(session, row)))
    for model_id in session.scalars(select(Model.id).where(Model.keep_last.is_not(None),
                                                           Model.deleted_at.is_(None))).all():
        done += sweep_retention(session, model_id, dry_run=False)[1]
    return done


def set_webhook(session: Session, model_id: str, url: str | None) -> Model:
    """Set where the lineage's head changes are posted; changes made before have no delivery due."""
    model = get_model(session, model_id)
    model.webhook_url = None if url is None else check_webhook_url(url, get_settings())
    session.execute(update(HeadChange).where(HeadChange.model_id == model_id, HeadChange.webhook_pending.is_(True),
                                             HeadChange.webhook_claimed_until.is_(None))
                    .values(webhook_pending=False))
    session.commit()
    return model
