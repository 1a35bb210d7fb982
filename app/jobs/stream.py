"""A job's events as a server-sent-events stream, read by polling the database.

The worker is another process and writes rows, so the API learns of news by looking: every
``POLL_SECONDS`` it reads the events after the last one sent and the job row. Each event goes out
with ``id: ftevent-N`` (so ``Last-Event-ID`` resumes after it) and its type as the SSE event name
(``message`` | ``metrics``); a ``progress`` event (no id, the job object as data) follows whenever
the job's status or progress changed. The stream ends once the job is terminal and every event
written up to then has been sent, or early with an ``error`` event if the database becomes unreachable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from app.core.db.session import new_session
from app.core.db.tables import JobEvent
from app.core.enums import TERMINAL_STATUSES
from app.jobs.presenters import event_object, job_object
from app.jobs.service import get_job, parse_event_id

log = logging.getLogger("sculpt.stream")

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
BATCH = 500


@dataclass
class Snapshot:
    job: dict
    events: list[dict]
    terminal: bool


def _read(job_id: str, after: int) -> Snapshot:
    # The job row is read before the events: a terminal row's final event is then surely among them.
    with new_session() as session:
        job = get_job(session, job_id)
        rows = session.scalars(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.id > after)
                               .order_by(JobEvent.id).limit(BATCH)).all()
        return Snapshot(job=job_object(job).model_dump(mode="json"),
                        events=[event_object(r).model_dump(mode="json") for r in rows],
                        terminal=job.status in TERMINAL_STATUSES and len(rows) < BATCH)


def sse(data: dict, event: str, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def start_after(last_event_id: str | None, after: str | None = None) -> int:
    """The numeric id to resume after (the header wins over the query); 0 (from the start) when none was given."""
    if last_event_id:
        return parse_event_id(last_event_id, param="Last-Event-ID")
    return parse_event_id(after) if after else 0


def check_job(job_id: str) -> None:
    """Raise NotFound before the response starts, so a bad id gets an ordinary JSON error."""
    with new_session() as session:
        get_job(session, job_id)


async def follow(job_id: str, after: int) -> AsyncIterator[str]:
    last_progress: tuple | None = None
    last_sent = time.monotonic()
    while True:
        try:
            snapshot = await run_in_threadpool(_read, job_id, after)
        except SQLAlchemyError as exc:
            # The response has started, so no error status can be sent: say why in the stream and end it.
            log.warning("event stream of %s ended: database error (%s)", job_id, type(exc).__name__)
            yield sse({"message": "The database is unreachable; reconnect with Last-Event-ID to resume"}, "error")
            return
        for event in snapshot.events:
            yield sse(event, event["type"], event["id"])
            after = parse_event_id(event["id"])
        job = snapshot.job
        state = (job["status"], json.dumps(job["progress"], sort_keys=True), job["cancel_requested"])
        changed = state != last_progress
        if changed:
            yield sse(job, "progress")
            last_progress = state
        if snapshot.events or changed:
            last_sent = time.monotonic()
        if snapshot.terminal:
            return
        if time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"  # a comment: keeps proxies from closing an idle stream
            last_sent = time.monotonic()
        await asyncio.sleep(POLL_SECONDS)
