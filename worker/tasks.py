"""Celery tasks: a thin shell around the job pipeline."""

from __future__ import annotations

from app.core.broker import RUN_JOB_TASK
from worker.celery_app import celery_app


@celery_app.task(name=RUN_JOB_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_job(job_id: str) -> None:
    from worker.scheduler import run_lineage_for

    # The queues this worker consumes (``--queues``): it runs only jobs meant for them.
    run_lineage_for(job_id, frozenset(run_job.app.amqp.queues.consume_from))
