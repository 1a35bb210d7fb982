"""Live training workers, from the rows they keep fresh (worker/presence.py), and what a job waits for."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.db.tables import Job, Worker, utcnow
from app.core.settings import get_settings


def live_workers(session: Session) -> list[Worker]:
    """Workers seen within SCULPT_WORKER_LIVE_SECONDS; a killed one drops out without anyone removing it."""
    since = utcnow() - timedelta(seconds=get_settings().worker_live_seconds)
    return list(session.scalars(select(Worker).where(Worker.seen_at >= since).order_by(Worker.name)))


def workers_per_queue(session: Session) -> Counter[str]:
    return Counter(queue for worker in live_workers(session) for queue in worker.queues)


def no_worker_reason(queue: str) -> str:
    return f"queue {queue} has no live worker"


def waiting_for(session: Session, job: Job) -> str | None:
    """Why a new job cannot start, if no live worker can take it or the job ahead of it in its lineage;
    None when a worker serves both (it still waits its turn, which needs no saying)."""
    served = workers_per_queue(session)
    if not served[job.queue]:
        return no_worker_reason(job.queue)
    ahead = session.scalar(select(Job).where(Job.model_id == job.model_id, Job.status.in_(("queued", "running")),
                                             Job.id != job.id).order_by(Job.seq).limit(1))
    if ahead is not None and ahead.status == "queued" and not served[ahead.queue]:
        return f"job {ahead.id} ahead of it in the lineage: {no_worker_reason(ahead.queue)}"
    return None
