"""Delivering a job's terminal state to its webhook, recording every attempt on the job.

Called by the worker after it commits a terminal state, by the API for a job cancelled while
queued, and by the reconciler for deliveries that a crash cut short (the job stays
``webhook_pending`` until its delivery is over). A claim on the job row keeps two processes from
delivering at once. It never raises: a receiver that is down must not fail or block the job.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from sqlalchemy import or_, select, update

from app.core.db.session import session_scope
from app.core.db.tables import Job, utcnow
from app.core.enums import TERMINAL_STATUSES
from app.core.logsafe import describe
from app.core.settings import get_settings
from app.core.timeutil import unix
from app.jobs.presenters import job_object
from app.webhooks.transport import delivery_seconds, post_signed, url_problem

log = logging.getLogger("sculpt.webhooks")


def _record(job_id: str, outcome: dict) -> None:
    with session_scope() as session:
        job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
        job.webhook_deliveries = [*(job.webhook_deliveries or []), outcome]


def _claim(job_id: str) -> bool:
    """Take the job's pending delivery for as long as a whole delivery can last; False if it is
    not pending or another process holds it."""
    now = utcnow()
    until = now + timedelta(seconds=delivery_seconds(get_settings()) + 60)
    with session_scope() as session:
        claimed = session.execute(
            update(Job).where(Job.id == job_id, Job.webhook_pending.is_(True), Job.status.in_(TERMINAL_STATUSES),
                              or_(Job.webhook_claimed_until.is_(None), Job.webhook_claimed_until < now))
            .values(webhook_claimed_until=until))
        return claimed.rowcount == 1


def _finish(job_id: str) -> None:
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(webhook_pending=False,
                                                                   webhook_claimed_until=None))


def _terminal_body(job_id: str) -> tuple[str, bytes, int]:
    """(url, body, attempts already made) for a claimed job."""
    with session_scope() as session:
        job = session.scalar(select(Job).where(Job.id == job_id))
        return (job.webhook_url, json.dumps(job_object(job).model_dump(mode="json")).encode(),
                len(job.webhook_deliveries or []))


def deliver_job_webhook(job_id: str) -> bool:
    """POST the job object (as GET shows it) to the job's webhook, going on from the attempts already
    made; returns whether it was delivered by this call."""
    try:
        if not _claim(job_id):
            return False
        url, body, made = _terminal_body(job_id)
        settings = get_settings()
        problem = url_problem(url, settings)  # the operator may have changed the allow-list since
        if problem:
            _record(job_id, {"attempt": made + 1, "at": unix(utcnow()), "error": f"not sent: webhook_url {problem}"})
            _finish(job_id)
            return False
        delivered = post_signed(url, body, settings, lambda outcome: _record(job_id, outcome), first=made + 1)
        _finish(job_id)
        if not delivered:
            log.warning("webhook for job %s not delivered after %d attempts", job_id, settings.webhook_attempts)
        return delivered
    except Exception as exc:  # noqa: BLE001 - the job's outcome stands whatever happens here
        log.warning("webhook for job %s failed: %s", job_id, describe(exc))
        return False


def pending_deliveries() -> list[str]:
    """Jobs whose delivery is due and held by nobody: never started, or cut short by a crash."""
    with session_scope() as session:
        return list(session.scalars(select(Job.id).where(
            Job.webhook_pending.is_(True), Job.status.in_(TERMINAL_STATUSES),
            or_(Job.webhook_claimed_until.is_(None), Job.webhook_claimed_until < utcnow())).order_by(Job.seq)))
