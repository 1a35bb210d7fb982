"""Runs a lineage's jobs one at a time, in submission order.

A delivered message names one job, but the worker that wins the lineage's lock drains the
lineage: it runs the earliest unfinished job, then the next, until none is left. A message
whose lineage is held by a live worker exits at once — that worker will reach its job — so
duplicate or redelivered messages never run a job twice.

Draining stops at a job meant for a queue this worker does not serve, and once the worker is
shutting down (Celery's warm shutdown, SIGTERM): the lineage's next job is then sent to its queue
as the lock is released, so a lineage moves between pools of workers (a big-GPU job after a small
one) and away from a worker being drained, and still runs one job at a time.
"""

from __future__ import annotations

import logging
import time

from app.core import logsafe
from app.core.broker import send_job
from app.jobs import attempts
from app.lineages import lock
from worker.leases import Heartbeat, worker_identity

log = logging.getLogger("sculpt.worker")


def _shutting_down() -> bool:
    from celery.worker import state

    return state.should_stop is not None or state.should_terminate is not None


def _next_here(model_id: str, queues: frozenset[str]) -> str | None:
    """The lineage's next job if this worker should run it: one of its queues, and not leaving."""
    pending = attempts.next_pending(model_id)
    if pending is None or _shutting_down():
        return None
    next_id, queue = pending
    return next_id if queue in queues else None


def _hand_off(model_id: str, queues: frozenset[str]) -> None:
    """Send the lineage's next job to its queue when this worker will not run it; if the broker is
    down, the reconciler of a worker on that queue sends it later."""
    pending = attempts.next_pending(model_id)
    if pending is None:
        return  # nothing waits
    next_id, queue = pending
    if queue in queues and not _shutting_down():
        return
    try:
        send_job(next_id, queue)
    except Exception as exc:  # noqa: BLE001  (any broker failure: the reconciler covers it)
        log.warning("could not hand job %s to queue %s: %s", next_id, queue, exc)
        return
    log.info("lineage %s continues with job %s on queue %s", model_id, next_id, queue)


def run_lineage_for(job_id: str, queues: frozenset[str]) -> None:
    """Run ``job_id``'s lineage for as long as its next job is for one of ``queues``."""
    from worker.pipeline import execute

    model_id = attempts.job_lineage(job_id)
    if model_id is None:
        log.warning("message for unknown job %s dropped", job_id)
        return
    owner = worker_identity()
    while _next_here(model_id, queues) is not None:
        if not lock.try_lock(model_id, owner):
            log.info("lineage %s is held by another worker; it will run job %s", model_id, job_id)
            return
        try:
            with Heartbeat(model_id, owner) as heartbeat:
                while (next_id := _next_here(model_id, queues)) is not None and not heartbeat.lost.is_set():
                    with logsafe.job_context(next_id):  # every line the job's run logs names it
                        started = execute(next_id, owner, heartbeat)
                    if not started:
                        time.sleep(1)  # its last worker died a moment ago; its lease is about to expire
        finally:
            lock.release(model_id, owner)
        # Loop: a job submitted while the lock was being released is ours to run.
    _hand_off(model_id, queues)
