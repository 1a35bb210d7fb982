"""``GET /v1/fine_tuning/jobs/{id}/events/stream``: a job's events as server-sent events.

Auth is the same bearer header as the rest of /v1 (there is no key in the URL, which would land in
access logs); browsers read the stream with ``fetch`` rather than ``EventSource`` so they can send it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from app.core.schemas import error_responses
from app.jobs import stream as job_stream

router = APIRouter(prefix="/fine_tuning/jobs", tags=["fine-tuning"])

# The stream's 200 in the OpenAPI document (FastAPI would describe it as JSON).
STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "`text/event-stream`: `message` and `metrics` events (with `id:`), `progress` events "
                         "(the job object) on every change; ends after the job's terminal event.",
          "content": {"text/event-stream": {"schema": {"type": "string"}}}}}


@router.get("/{job_id}/events/stream", response_class=StreamingResponse,
            responses={**STREAM_DOC, **error_responses(401, 404, 422, 429)})
def stream_events(job_id: str,
                  last_event_id: str | None = Header(None, alias="Last-Event-ID", max_length=40),
                  after: str | None = Query(None, max_length=40,
                                            description="Resume after this event id (like Last-Event-ID)."),
                  ) -> StreamingResponse:
    """Follow a job live: its events oldest first, then progress, until it ends."""
    start = job_stream.start_after(last_event_id, after)
    job_stream.check_job(job_id)
    # no-cache and no proxy buffering, so each event reaches the client as it is written.
    return StreamingResponse(job_stream.follow(job_id, start), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
