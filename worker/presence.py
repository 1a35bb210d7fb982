"""The worker announces itself: a row in ``workers`` with its queues, renewed every heartbeat, removed
at shutdown. A killed worker's row simply goes stale (SCULPT_WORKER_LIVE_SECONDS). The API reads the
rows to say when a new job's queue has no live worker, and to list workers (GET /v1/workers, /metrics);
after that, one live worker (the first by name) keeps each queued job's ``progress.waiting_for`` true as
workers come and go."""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select

from app.core.db.session import session_scope
from app.core.db.tables import Job
from app.core.settings import get_settings
from app.jobs.service import note_waiting
from app.workers.service import announce, live_workers, waiting_for, withdraw

log = logging.getLogger("sculpt.worker")

_stop = threading.Event()


def refresh_waiting(name: str) -> int:
    """Bring each queued job's ``waiting_for`` up to date, with an event when it changes, if this worker is
    the first live one by name (so one process writes them). Returns how many jobs changed."""
    changed = 0
    with session_scope() as session:
        live = live_workers(session)
        if not live or live[0].name != name:
            return 0
        for job in session.scalars(select(Job).where(Job.status == "queued").order_by(Job.seq)).all():
            reason = waiting_for(session, job)
            if (job.progress or {}).get("waiting_for") != reason and note_waiting(session, job, reason):
                changed += 1
    return changed


def _loop(name: str, queues: list[str]) -> None:
    while True:
        try:
            announce(name, queues)
            refresh_waiting(name)
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
