"""POST /v1/chat/completions and /v1/completions (OpenAI's shapes; ``stream: true`` as server-sent events)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from app.core.schemas import error_responses
from app.http.deps import SessionDep
from app.inference import service

router = APIRouter(tags=["inference"])

RESPONSES = error_responses(400, 401, 404, 429, 503)
# Without this, a proxy in between may hold the events back until the stream ends.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def _answer(session, chat: bool, body: Any):
    plan = await run_in_threadpool(service.plan, session, chat, body)
    session.close()  # nothing more to read: the connection goes back to the pool before generating
    upstream, first = await service.open_upstream(plan)
    if plan.stream:
        return StreamingResponse(service.stream(plan, upstream, first), media_type="text/event-stream",
                                 headers=STREAM_HEADERS)
    return JSONResponse(await service.collect(plan, upstream, first))


@router.post("/chat/completions", responses=RESPONSES)
async def chat_completions(session: SessionDep, body: Any = Body(  # noqa: B008 - FastAPI's way to declare a body
        description="OpenAI's chat completion request: model, messages, and optionally max_tokens "
                    "(or max_completion_tokens), temperature, top_p, stop, seed, n, stream, stream_options. "
                    "Any other parameter is refused with 400 naming it.")):
    """Answer a chat with a version: the messages are rendered with its chat template."""
    return await _answer(session, True, body)


@router.post("/completions", responses=RESPONSES)
async def completions(session: SessionDep, body: Any = Body(  # noqa: B008 - FastAPI's way to declare a body
        description="OpenAI's completion request: model, prompt, and optionally max_tokens, temperature, "
                    "top_p, stop, seed, n, stream, stream_options. Any other parameter is refused with 400.")):
    """Continue a prompt with a version."""
    return await _answer(session, False, body)
