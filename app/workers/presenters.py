from __future__ import annotations

from app.core.db.tables import Worker
from app.core.timeutil import unix
from app.workers.schemas import WorkerObject


def worker_object(row: Worker) -> WorkerObject:
    return WorkerObject(id=row.name, queues=list(row.queues), started_at=unix(row.started_at),
                        seen_at=unix(row.seen_at))
