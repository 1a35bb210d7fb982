"""``GET /metrics``: Prometheus text format. Open while no API key exists; after that it needs a key
like /v1 (Prometheus sends it with ``authorization: {credentials_file: ...}``)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from app.core.schemas import error_responses

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response, responses=error_responses(401, 429))
async def metrics(request: Request) -> Response:
    body = await run_in_threadpool(request.app.state.metrics.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
