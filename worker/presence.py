"""The worker announces itself: a row in ``workers`` with its queues, renewed every heartbeat, removed
at shutdown. A killed worker's row simply goes stale (SCULPT_WORKER_LIVE_SECONDS). The API reads the
rows to say when a job's queue has no live worker, and to list workers (GET /v1/workers, /metrics)."""

from __future__ import annotations

import logging
import threading

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from app.core.db.session import session_scope
from app.core.db.tables import Worker, utcnow
from app.core.settings import get_settings

log = logging.getLogger("sculpt.worker")

_stop = threading.Event()


def announce(name: str, queues: list[str]) -> None:
    """Insert or renew this worker's row (an UPDATE first, so it is one code path on PostgreSQL and SQLite)."""
    now = utcnow()
    with session_scope() as session:
        renewed = session.execute(update(Worker).where(Worker.name == name)
                                  .values(queues=queues, seen_at=now)).rowcount
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


def _loop(name: str, queues: list[str]) -> None:
    while True:
        try:
            announce(name, queues)
        except Exception as exc:  # noqa: BLE001 - a database blip: the row outlives several beats
            log.warning("worker %s could not renew its presence: %s", name, exc)
        if _stop.wait(get_settings().heartbeat_seconds):
            return


def start_presence(name: str, queues: list[str]) -> None:
    _stop.clear()
    threading.Thread(target=_loop, args=(name, queues), name="sculpt-presence", daemon=True).start()


def stop_presence(name: str) -> None:
    _stop.set()
    try:
        withdraw(name)
    except Exception as exc:  # noqa: BLE001 - shutting down anyway; the row goes stale by itself
        log.warning("worker %s could not withdraw its presence: %s", name, exc)
