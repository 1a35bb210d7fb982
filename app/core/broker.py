"""The Celery client configuration shared by the API (which only sends) and the worker.

It lives in ``app`` because the API enqueues jobs without importing the worker or torch.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from celery import Celery
from sqlalchemy import update

from app.core.db.session import session_scope
from app.core.db.tables import Job, utcnow
from app.core.settings import Settings, get_settings

RUN_JOB_TASK = "sculpt.run_job"
DEFAULT_QUEUE = "default"


def celery_config(settings: Settings) -> dict:
    config: dict = {
        "broker_url": settings.resolved_broker_url,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": DEFAULT_QUEUE,
        "task_time_limit": settings.job_time_limit_seconds,
        "task_soft_time_limit": settings.job_time_limit_seconds - 60,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # On SIGTERM give a running job time to reach a step boundary; its lease covers the rest.
        "worker_soft_shutdown_timeout": 30,
        "worker_hijack_root_logger": False,
        # What libraries print (a progress bar) is not a warning; the worker's own lines are logged, not printed.
        "worker_redirect_stdouts_level": "INFO",
        "task_ignore_result": True,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "accept_content": ["json"],
    }
    if settings.is_embedded_broker:
        folder = settings.broker_folder
        for sub in ("out", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        config["broker_transport_options"] = {
            "data_folder_in": str(folder / "out"),
            "data_folder_out": str(folder / "out"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
    else:
        # Longer than the hard time limit, so Redis never hands a running job to a second worker.
        visibility = settings.broker_visibility_timeout or settings.job_time_limit_seconds + 3600
        config["broker_transport_options"] = {
            "visibility_timeout": visibility,
            # Sweep for unacknowledged messages on the same time scale (kombu's default is ~100 s).
            "unacked_restore_interval": max(1, min(10, visibility // 2)),
            "unacked_restore_throttle": 1,
        }
    return config


@lru_cache
def celery_client() -> Celery:
    app = Celery("sculpt")
    app.conf.update(celery_config(get_settings()))
    return app


def send_job(job_id: str, queue: str = DEFAULT_QUEUE) -> datetime:
    """Send the job's message to its queue, then stamp ``enqueued_at`` (what the reconciler goes by) and
    return it. The API, the scheduler's hand-off and the reconciler all send jobs this way. A broker
    failure propagates and stamps nothing, so the job still looks unsent."""
    celery_client().send_task(RUN_JOB_TASK, args=[job_id], queue=queue)
    now = utcnow()
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(enqueued_at=now))
    return now
