"""The Celery app of the worker: one job per process (``--pool solo``), long-job settings.

Configuration comes from ``app.core.broker.celery_config`` so the API and the worker agree on the
broker and its options. The model is loaded inside the task, never at import time.
"""

from __future__ import annotations

import logging
import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, worker_ready, worker_shutting_down

from app.core import logsafe
from app.core.broker import celery_config
from app.core.settings import get_settings

log = logging.getLogger("sculpt.worker")
# No download or loading progress bars: redrawn with carriage returns, they make no log lines.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

celery_app = Celery("sculpt", include=["worker.tasks"])
celery_app.conf.update(celery_config(get_settings()))
# A killed worker's job is recovered by the reconciler from the job table, not by Celery retries.
celery_app.conf.task_acks_on_failure_or_timeout = True


@after_setup_logger.connect
@after_setup_task_logger.connect
def _one_line_exceptions(logger=None, **_kwargs) -> None:
    logsafe.install(logger.name if logger else "")


@worker_ready.connect
def _start_reconciler(sender=None, **_kwargs) -> None:
    from worker.reconciler import start_reconciler

    queues = [q.name for q in sender.app.amqp.queues.consume_from.values()] if sender else None
    start_reconciler(queues)
    if sender is not None:
        from worker.presence import start_presence

        start_presence(sender.hostname, sorted(queues or []))


@worker_shutting_down.connect
def _stop_reconciler(sender=None, **_kwargs) -> None:
    from worker.presence import stop_presence
    from worker.reconciler import stop_reconciler

    stop_reconciler()
    if sender is not None:
        stop_presence(str(sender))
