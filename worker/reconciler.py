"""Keeps the job table and the broker in agreement, from inside every worker.

On start and then periodically it (1) re-enqueues the earliest unfinished job of each lineage
that no live worker holds and whose message may be gone (a Redis restart, a killed worker, a
broker that was down when the job was accepted), (2) finishes version and lineage deletions a
crash cut short and applies retention policies, (3) removes what crashed saves left in the
artifact root: temp folders and checkpoint folders that no version row points at, and (4)
resumes webhook deliveries (jobs' and head changes') that a crash cut short or that never started.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from sqlalchemy import func, select

from app.core.broker import send_job
from app.core.db.session import session_scope
from app.core.db.tables import Job, ModelVersion, utcnow
from app.core.enums import PENDING_STATUSES
from app.core.settings import get_settings
from app.core.storage import CHECKPOINTS, TMP_PREFIX, get_storage
from app.lineages import lock
from app.versions import service as versions
from app.webhooks.delivery import pending_deliveries, pending_head_changes
from app.webhooks.dispatch import notify_head_changes, notify_terminal
from worker.cache import remove_stale_downloads

log = logging.getLogger("sculpt.worker")
STALE_UPLOAD_S = 3600
MAX_BACKOFF_ROUNDS = 10

_stop = threading.Event()


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _message_may_be_lost(job: Job, now: datetime, period: float) -> bool:
    """Re-send with a growing interval (its age so far, capped), so a job waiting its turn
    behind long jobs does not collect a duplicate message every round."""
    if job.enqueued_at is None:
        return True
    waited = (now - _as_utc(job.enqueued_at)).total_seconds()
    age = (_as_utc(job.enqueued_at) - _as_utc(job.created_at)).total_seconds()
    return waited > min(max(period, age), MAX_BACKOFF_ROUNDS * period)


def requeue_orphans(queues: list[str] | None = None) -> list[str]:
    now = utcnow()
    period = get_settings().reconcile_seconds
    sent: list[str] = []
    with session_scope() as session:
        unheld = lock.unheld(session, now)
        if not unheld:
            return sent
        first = (select(Job.model_id, func.min(Job.seq).label("seq"))
                 .where(Job.status.in_(PENDING_STATUSES), Job.model_id.in_(unheld)).group_by(Job.model_id).subquery())
        jobs = session.scalars(select(Job).join(first, Job.seq == first.c.seq)).all()
        targets = [(job.id, job.queue) for job in jobs
                   if (queues is None or job.queue in queues) and _message_may_be_lost(job, now, period)]
    for job_id, queue in targets:
        try:
            send_job(job_id, queue)
        except Exception as exc:  # noqa: BLE001 - the broker is down: the next round tries again
            log.warning("reconciler could not enqueue %s: %s", job_id, exc)
            continue
        sent.append(job_id)
    if sent:
        log.info("reconciler re-enqueued %s", sent)
    return sent


def sweep_artifacts() -> list[str]:
    """Remove leftovers of crashed saves, only in lineages that no live worker is saving into,
    and temp files of uploads and downloads that died long ago."""
    storage = get_storage()
    with session_scope() as session:
        unheld = set(lock.unheld(session, utcnow()))
        known = {(m, f"v{v}") for m, v in session.execute(select(ModelVersion.model_id, ModelVersion.version))}
    removed = []
    for lineage in storage.children(CHECKPOINTS):
        if lineage not in unheld:
            continue
        for entry in storage.children(f"{CHECKPOINTS}/{lineage}"):
            if entry.startswith(TMP_PREFIX) or (lineage, entry) not in known:
                key = f"{CHECKPOINTS}/{lineage}/{entry}"
                storage.delete(key)
                removed.append(storage.uri(key))
    removed += storage.remove_stale_scratch(STALE_UPLOAD_S)
    removed += remove_stale_downloads(STALE_UPLOAD_S)
    if removed:
        log.info("removed leftovers of interrupted saves: %s", removed)
    return removed


def resume_webhooks() -> list[str]:
    """Deliver, each job on a thread of its own and head changes on one more, every pending webhook that
    no process holds."""
    due = pending_deliveries()
    for job_id in due:
        notify_terminal(job_id)
    if pending_head_changes():
        notify_head_changes()
    return due


def finish_deletions() -> list[int]:
    """Complete version and lineage deletions a crash cut short, and apply the retention policies."""
    with session_scope() as session:
        removed = versions.finish_deletions(session)
    if removed:
        log.info("removed checkpoints: %s", [(r.version, r.bytes) for r in removed])
    return [r.version for r in removed]


def reconcile_once(queues: list[str] | None = None) -> None:
    try:
        finish_deletions()
        sweep_artifacts()
        requeue_orphans(queues)
        resume_webhooks()
    except Exception as exc:  # noqa: BLE001 - the database may be down; the next round tries again
        log.warning("reconcile round failed: %s", exc)


def _loop(queues: list[str] | None) -> None:
    reconcile_once(queues)
    while not _stop.wait(get_settings().reconcile_seconds):
        reconcile_once(queues)


def start_reconciler(queues: list[str] | None = None) -> None:
    _stop.clear()
    threading.Thread(target=_loop, args=(queues,), name="sculpt-reconciler", daemon=True).start()


def stop_reconciler() -> None:
    _stop.set()
