from __future__ import annotations

import re
from typing import Literal

from fastapi import APIRouter, Header, Query, Request, Response

from app.core.enums import EventType
from app.core.schemas import ListObject, error_responses
from app.http.auth import TRAIN
from app.http.deps import CachedReadsDep, SessionDep
from app.jobs import service
from app.jobs.presenters import checkpoint_object, event_object, job_object
from app.jobs.schemas import CheckpointObject, EventObject, JobCreate, JobObject
from app.webhooks.dispatch import notify_terminal

router = APIRouter(prefix="/fine_tuning/jobs", tags=["fine-tuning"])

METADATA_PARAM = re.compile(r"^metadata\[(?P<key>[^\]]{1,64})\]$")


def _page(items: list, has_more: bool) -> ListObject:
    return ListObject(data=items, has_more=has_more, first_id=items[0].id if items else None,
                      last_id=items[-1].id if items else None)


@router.post("", status_code=201, response_model=JobObject, dependencies=[TRAIN],
             responses={200: {"model": JobObject, "description": "A replay of an earlier request with the same "
                                                                 "Idempotency-Key and body"},
                        **error_responses(401, 403, 404, 409, 422, 429)})
def create_job(session: SessionDep, body: JobCreate, response: Response,
               idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=255)) -> JobObject:
    """Create a fine-tuning job: it trains the lineage's head on a new task and records a new version."""
    job, created = service.create_job(session, body, idempotency_key or None)
    if created:
        service.enqueue(job)
    else:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return job_object(job)


METADATA_FILTER_DOC = {"parameters": [{
    "name": "metadata", "in": "query", "required": False, "style": "deepObject", "explode": True,
    "description": "Only jobs whose metadata has these values: `metadata[pipeline]=nightly`.",
    "schema": {"type": "object", "additionalProperties": {"type": "string"}},
}]}


@router.get("", response_model=ListObject[JobObject], responses=error_responses(401, 404, 422, 429),
            openapi_extra=METADATA_FILTER_DOC)
def list_jobs(session: SessionDep, request: Request, after: str | None = Query(None, max_length=64),
              limit: int = Query(20, ge=1, le=100)) -> ListObject[JobObject]:
    """Newest first. Filter with `metadata[key]=value` query parameters."""
    metadata = {m.group("key"): value for name, value in request.query_params.multi_items()
                if (m := METADATA_PARAM.match(name))}
    rows, has_more = service.list_jobs(session, after, limit, metadata)
    return _page([job_object(j) for j in rows], has_more)


@router.get("/{job_id}", response_model=JobObject, responses=error_responses(401, 404, 429))
async def get_job(reads: CachedReadsDep, job_id: str) -> JobObject:
    return job_object(await reads.job(job_id))


@router.get("/{job_id}/events", response_model=ListObject[EventObject],
            responses=error_responses(401, 404, 422, 429))
async def list_events(reads: CachedReadsDep, job_id: str, after: str | None = Query(None, max_length=40),
                      limit: int = Query(20, ge=1, le=100),
                      type: EventType | None = None,
                      order: Literal["asc", "desc"] = Query("desc", description="'asc' follows a job from its start."),
                      ) -> ListObject[EventObject]:
    rows, has_more = await reads.events(job_id, after, limit, type, order)
    return _page([event_object(e) for e in rows], has_more)


@router.post("/{job_id}/cancel", response_model=JobObject, dependencies=[TRAIN],
             responses=error_responses(401, 403, 404, 409, 429))
def cancel_job(session: SessionDep, job_id: str) -> JobObject:
    """Queued: cancelled at once. Running: the worker stops it at its next check (each training step, and
    between phases)."""
    job = service.cancel_job(session, job_id)
    if job.status == "cancelled" and job.webhook_url:  # no worker will see it: the API delivers
        notify_terminal(job.id)
    return job_object(job)


@router.get("/{job_id}/checkpoints", response_model=ListObject[CheckpointObject],
            responses=error_responses(401, 404, 429))
def list_checkpoints(session: SessionDep, job_id: str) -> ListObject[CheckpointObject]:
    return _page([checkpoint_object(j, v) for j, v in service.checkpoints(session, job_id)], False)
