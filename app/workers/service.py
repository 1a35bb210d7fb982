"""Training workers' rows, which each worker keeps fresh (worker/presence.py): announcing and withdrawing one,
the live ones, and what a job waits for."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.db.session import rows_matched, session_scope
from app.core.db.tables import Job, Worker, utcnow
from app.core.enums import PENDING_STATUSES
from app.core.settings import get_settings


def announce(name: str, queues: list[str]) -> None:
    """Insert or renew a worker's row (an UPDATE first, so it is one code path on PostgreSQL and SQLite)."""
    now = utcnow()
    with session_scope() as session:
        renewed = rows_matched(session, update(Worker).where(Worker.name == name)
                               .values(queues=queues, seen_at=now))
        if renewed:
            return
    try:
        with session_scope() as session:
            session.add(Worker(name=name, queues=queues, started_at=now, seen_at=now))
    except IntegrityError:
        pass  # a concurrent announce of the same name inserted it: it is fresh either way


def withdraw(name: str) -> None:
    with session_scope() as session:
        session.execute(delete(Worker).where(Worker.name == name))


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
    ahead = session.scalar(select(Job).where(Job.model_id == job.model_id, Job.status.in_(PENDING_STATUSES),
                                             Job.id != job.id).order_by(Job.seq).limit(1))
    if ahead is not None and ahead.status == "queued" and not served[ahead.queue]:
        return f"job {ahead.id} ahead of it in the lineage: {no_worker_reason(ahead.queue)}"
    return None
