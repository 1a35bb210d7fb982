"""Delivering webhooks, recording every attempt on the row they are about: a job's terminal state to
the job's webhook, and each head change of a lineage to the lineage's webhook ("model.head_changed").

A job's delivery is made by the worker after it commits a terminal state, by the API for a job
cancelled while queued; a head change's by whoever moved the head, each after its transaction has
committed, on a thread of its own (``app.webhooks.dispatch``). The reconciler resumes those a crash cut
short (the row stays ``webhook_pending`` until its delivery is over). A claim on the row keeps two
processes from delivering at once: it lasts as long as the rest of a delivery can (each attempt has a
deadline), is renewed before each attempt, and an attempt is sent only while its renewal finds the
claim as this process left it. Each attempt is recorded before it is sent, so one cut short by a crash
still counts: the receiver gets at most SCULPT_WEBHOOK_ATTEMPTS posts, each numbered once. It never
raises: a receiver that is down must not fail or block the job or the head change.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from sqlalchemy import func, or_, select, update

from app.core.db.session import rows_matched, session_scope
from app.core.db.tables import HeadChange, Job, Model, utcnow
from app.core.enums import TERMINAL_STATUSES
from app.core.logsafe import describe
from app.core.settings import get_settings
from app.core.timeutil import unix
from app.jobs.presenters import job_object
from app.lineages.presenters import head_change_object
from app.webhooks.transport import delivery_seconds, post_signed, url_problem

log = logging.getLogger("sculpt.webhooks")
HEAD_CHANGED = "model.head_changed"

# The two kinds of row a webhook is delivered for (a constrained TypeVar: each is checked on its own).
Row = TypeVar("Row", Job, HeadChange)


# Beyond the longest a delivery can take: room for the database writes between attempts.
CLAIM_SLACK_SECONDS = 60
INTERRUPTED = "sent, no outcome recorded: still under way, or the delivering process stopped during it"


def _record(table: type[Row], key, outcome: dict) -> None:
    """Write an attempt's outcome, in place of its entry when ``begin`` recorded it as sent."""
    with session_scope() as session:
        row: Row = session.scalars(select(table).where(table.id == key).with_for_update()).one()
        earlier: list = [d for d in row.webhook_deliveries or [] if d.get("attempt") != outcome["attempt"]]
        row.webhook_deliveries = [*earlier, outcome]


def _claim_until() -> datetime:
    return utcnow() + timedelta(seconds=delivery_seconds(get_settings()) + CLAIM_SLACK_SECONDS)


@dataclass
class _Claim(Generic[Row]):
    """This process's hold on a row's delivery: the row's ``webhook_claimed_until`` as this process set it."""

    table: type[Row]
    key: str | int
    until: datetime

    def renew(self) -> bool:
        """Hold the row for the rest of a delivery; False when its claim is no longer this process's."""
        until = _claim_until()
        with session_scope() as session:
            held = rows_matched(session, update(self.table).where(
                self.table.id == self.key, self.table.webhook_pending.is_(True),
                self.table.webhook_claimed_until == self.until).values(webhook_claimed_until=until))
        if held:
            self.until = until
        return held == 1

    def begin(self, number: int) -> bool:
        """Before sending attempt ``number``: renew the claim and record the attempt, so that it counts even
        if this process dies while sending it."""
        if not self.renew():
            log.warning("webhook delivery for %s %s stopped: another process holds it now",
                        self.table.__tablename__, self.key)
            return False
        _record(self.table, self.key, {"attempt": number, "at": unix(utcnow()), "error": INTERRUPTED})
        return True


def _claim(table: type[Row], key, *due) -> _Claim[Row] | None:
    """Take the row's pending delivery for as long as a whole delivery can last; None if it is not pending
    (or not ``due``) or another process holds it."""
    now = utcnow()
    until = _claim_until()
    with session_scope() as session:
        claimed = rows_matched(session, (
            update(table).where(table.id == key, table.webhook_pending.is_(True), *due,
                                or_(table.webhook_claimed_until.is_(None), table.webhook_claimed_until < now))
            .values(webhook_claimed_until=until)))
    return _Claim(table, key, until) if claimed == 1 else None


def _finish(claim: _Claim) -> None:
    with session_scope() as session:
        session.execute(update(claim.table).where(claim.table.id == claim.key,
                                                  claim.table.webhook_claimed_until == claim.until)
                        .values(webhook_pending=False, webhook_claimed_until=None))


def _deliver(claim: _Claim, url: str, body: bytes, made: int, what: str) -> bool:
    """POST ``body`` to ``url`` for a claimed row, going on from the attempts already made."""
    settings = get_settings()
    table, key = claim.table, claim.key
    problem = url_problem(url, settings)  # the operator may have changed the allow-list since
    if problem:
        _record(table, key, {"attempt": made + 1, "at": unix(utcnow()), "error": f"not sent: webhook_url {problem}"})
        _finish(claim)
        return False
    delivered = post_signed(url, body, settings, claim.begin, lambda outcome: _record(table, key, outcome),
                            first=made + 1)
    _finish(claim)
    if not delivered:
        log.warning("webhook for %s not delivered after %d attempts", what, settings.webhook_attempts)
    return delivered


def _terminal_body(job_id: str) -> tuple[str, bytes, int]:
    """(url, body, attempts already made) for a claimed job."""
    with session_scope() as session:
        job = session.scalars(select(Job).where(Job.id == job_id)).one()
        assert job.webhook_url is not None  # a job's delivery is pending only when it was given a webhook_url
        return (job.webhook_url, json.dumps(job_object(job).model_dump(mode="json")).encode(),
                len(job.webhook_deliveries or []))


def deliver_job_webhook(job_id: str) -> bool:
    """POST the job object (as GET shows it) to the job's webhook, going on from the attempts already
    made; returns whether it was delivered by this call."""
    try:
        claim = _claim(Job, job_id, Job.status.in_(TERMINAL_STATUSES))
        if claim is None:
            return False
        return _deliver(claim, *_terminal_body(job_id), what=f"job {job_id}")
    except Exception as exc:  # noqa: BLE001 - the job's outcome stands whatever happens here
        log.warning("webhook for job %s failed: %s", job_id, describe(exc))
        return False


def pending_deliveries() -> list[str]:
    """Jobs whose delivery is due and held by nobody: never started, or cut short by a crash."""
    with session_scope() as session:
        return list(session.scalars(select(Job.id).where(
            Job.webhook_pending.is_(True), Job.status.in_(TERMINAL_STATUSES),
            or_(Job.webhook_claimed_until.is_(None), Job.webhook_claimed_until < utcnow())).order_by(Job.seq)))


def _head_change_body(change_id: int) -> tuple[str | None, bytes, int]:
    """(the lineage's webhook_url, the "model.head_changed" event, attempts already made)."""
    with session_scope() as session:
        change = session.get_one(HeadChange, change_id)
        url = session.scalar(select(Model.webhook_url).where(Model.id == change.model_id))
        data = head_change_object(change)
        event = {"object": "event", "type": HEAD_CHANGED, "id": data.id, "created_at": data.created_at,
                 "data": data.model_dump(mode="json")}
        return url, json.dumps(event).encode(), len(change.webhook_deliveries or [])


def deliver_head_changes(model_id: str | None = None) -> list[int]:
    """Deliver the pending head changes of a lineage (of every lineage when None), each lineage's in order:
    while a process delivers a lineage's oldest change, the others leave that lineage to it, and it goes
    on to the next. A change made while the lineage had no webhook is simply finished. Returns those
    delivered by this call."""
    delivered = []
    try:
        while due := _due_head_changes(model_id):
            for change_id in due:
                claim = _claim(HeadChange, change_id)
                if claim is None:
                    continue  # taken meanwhile: that lineage is another process's now
                url, body, made = _head_change_body(change_id)
                if url is None:
                    _finish(claim)
                elif _deliver(claim, url, body, made, what=f"head change {change_id}"):
                    delivered.append(change_id)
    except Exception as exc:  # noqa: BLE001 - the head has moved whatever happens here
        log.warning("head-change webhooks failed: %s", describe(exc))
    return delivered


def _due_head_changes(model_id: str | None) -> list[int]:
    """Each lineage's oldest pending head change, where no process holds it."""
    oldest = select(func.min(HeadChange.id)).where(HeadChange.webhook_pending.is_(True))
    if model_id is not None:
        oldest = oldest.where(HeadChange.model_id == model_id)
    with session_scope() as session:
        return list(session.scalars(select(HeadChange.id).where(
            HeadChange.id.in_(oldest.group_by(HeadChange.model_id)),
            or_(HeadChange.webhook_claimed_until.is_(None), HeadChange.webhook_claimed_until < utcnow()))
            .order_by(HeadChange.id)))


def pending_head_changes(model_id: str | None = None) -> list[int]:
    with session_scope() as session:
        query = select(HeadChange.id).where(
            HeadChange.webhook_pending.is_(True),
            or_(HeadChange.webhook_claimed_until.is_(None), HeadChange.webhook_claimed_until < utcnow()))
        if model_id is not None:
            query = query.where(HeadChange.model_id == model_id)
        return list(session.scalars(query.order_by(HeadChange.id)))
