"""Delivering a job's terminal state to its webhook, recording every attempt on the job.

Called by the worker after it commits a terminal state, and by the API for a job cancelled while
queued. It never raises: a receiver that is down must not fail or block the job.
"""

from __future__ import annotations

import json
import logging

from sqlalchemy import select

from app.db.session import session_scope
from app.db.tables import Job, utcnow
from app.presenters import job_object
from app.schemas.jobs import TERMINAL_STATUSES
from app.settings import get_settings
from app.timeutil import unix
from app.webhooks import post_signed, url_problem

log = logging.getLogger("sculpt.webhooks")


def _record(job_id: str, outcome: dict) -> None:
    with session_scope() as session:
        job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
        job.webhook_deliveries = [*(job.webhook_deliveries or []), outcome]


def _terminal_body(job_id: str) -> tuple[str, bytes] | None:
    """(url, body) for a job that ended and names a webhook; None otherwise."""
    with session_scope() as session:
        job = session.scalar(select(Job).where(Job.id == job_id))
        if job is None or not job.webhook_url or job.status not in TERMINAL_STATUSES:
            return None
        return job.webhook_url, json.dumps(job_object(job).model_dump(mode="json")).encode()


def deliver_job_webhook(job_id: str) -> bool:
    """POST the job object (as GET shows it) to the job's webhook; returns whether it was delivered."""
    try:
        target = _terminal_body(job_id)
        if target is None:
            return False
        url, body = target
        settings = get_settings()
        problem = url_problem(url, settings)  # the operator may have changed the allow-list since
        if problem:
            _record(job_id, {"attempt": 1, "at": unix(utcnow()), "error": f"not sent: webhook_url {problem}"})
            return False
        delivered = post_signed(url, body, settings, lambda outcome: _record(job_id, outcome))
        if not delivered:
            log.warning("webhook for job %s not delivered after %d attempts", job_id, settings.webhook_attempts)
        return delivered
    except Exception as exc:  # noqa: BLE001 - the job's outcome stands whatever happens here
        log.warning("webhook for job %s failed: %s: %s", job_id, type(exc).__name__, exc)
        return False
