"""Runs a lineage's jobs one at a time, in submission order.

A delivered message names one job, but the worker that wins the lineage's lock drains the
lineage: it runs the earliest unfinished job, then the next, until none is left. A message
whose lineage is held by a live worker exits at once — that worker will reach its job — so
duplicate or redelivered messages never run a job twice.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import select

from app.db.session import session_scope
from app.db.tables import Job
from worker import jobstore, leases
from worker.leases import Heartbeat, worker_identity

log = logging.getLogger("sculpt.worker")


def run_lineage_for(job_id: str) -> None:
    from worker.pipeline import execute

    with session_scope() as session:
        model_id = session.scalar(select(Job.model_id).where(Job.id == job_id))
    if model_id is None:
        log.warning("message for unknown job %s dropped", job_id)
        return
    owner = worker_identity()
    while jobstore.next_pending(model_id) is not None:
        if not leases.try_lock_lineage(model_id, owner):
            log.info("lineage %s is held by another worker; it will run job %s", model_id, job_id)
            return
        try:
            with Heartbeat(model_id, owner) as heartbeat:
                while (next_id := jobstore.next_pending(model_id)) is not None and not heartbeat.lost.is_set():
                    if not execute(next_id, owner, heartbeat):
                        time.sleep(1)  # its last worker died a moment ago; its lease is about to expire
        finally:
            leases.release_lineage(model_id, owner)
        # Loop: a job submitted while the lock was being released is ours to run.
