"""The FastAPI application: routers under /v1, health at the root, errors in OpenAI's shape."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI, HTTPException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core import logsafe
from app.core.errors import error_response, install_error_handlers
from app.core.ids import ascii_number
from app.core.schemas import error_responses
from app.core.settings import get_settings
from app.files import router as files
from app.health import router as health
from app.http import dashboard
from app.http.auth import authenticate
from app.http.cached_reads import CachedReads
from app.http.change_feed import ChangeFeed
from app.http.ratelimit import RateLimiter
from app.inference import router as inference
from app.jobs import capabilities_router as capabilities
from app.jobs import router as jobs
from app.jobs import stream_router as stream
from app.keys import router as keys
from app.lineages import router as lineages
from app.monitoring import router as metrics
from app.monitoring.prometheus import HttpMetricsMiddleware, Metrics
from app.versions import router as versions
from app.workers import router as workers

# Multipart framing around an upload's bytes; the file itself is held to max_upload_bytes by the validator.
MULTIPART_SLACK_BYTES = 64 * 1024


class RequestGuard:
    """Refuse URLs holding NUL, and cap every request body while it streams in (uploads get the upload
    limit, JSON the request limit).

    A declared Content-Length over the cap is refused before reading; otherwise the count stops the
    read as soon as the cap is passed, so an oversized body never sits in memory or on disk.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if "\x00" in scope["path"] or b"%00" in scope["query_string"].lower():
            response = error_response(400, "The URL contains a NUL character", "invalid_request_error",
                                      code="invalid_url")
            return await response(scope, receive, send)
        settings = get_settings()
        limit = (settings.max_upload_bytes + MULTIPART_SLACK_BYTES if scope["path"].rstrip("/") == "/v1/files"
                 else settings.max_request_bytes)
        too_large = HTTPException(413, f"The request body is larger than {limit} bytes")
        declared = ascii_number(Headers(scope=scope).get("content-length", ""))
        if declared is not None and declared > limit:
            return await self._refuse(too_large, scope, receive, send)
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except HTTPException as exc:
            if exc is not too_large or started:
                raise
            await self._refuse(too_large, scope, receive, send)

    @staticmethod
    async def _refuse(exc: HTTPException, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, exc.detail, "invalid_request_error", code="payload_too_large")
        await response(scope, receive, send)


@contextlib.asynccontextmanager
async def _follow_changes(app: FastAPI) -> AsyncIterator[None]:
    """In server mode, follow PostgreSQL's change notifications for as long as the app runs."""
    url = get_settings().resolved_database_url
    task = None if url.startswith("sqlite") else asyncio.create_task(app.state.change_feed.follow(url))
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def create_app() -> FastAPI:
    settings = get_settings()
    # Starlette re-raises an unhandled error after its 500 response so that the server logs it: as one line.
    logsafe.install("uvicorn", "uvicorn.access")
    app = FastAPI(lifespan=_follow_changes, title="Sculpt", version="0.1.0",
                  description="Continual training of language models: constrained full fine-tuning as a "
                              "service, OpenAI-compatible where OpenAI has the concept.",
                  # Any route: a malformed URL (400), a request that fails validation (422, in the same
                  # error shape, not FastAPI's default) or the database being unreachable (503).
                  responses=error_responses(400, 422, 503))
    app.state.change_feed = ChangeFeed()
    app.state.reads = CachedReads(app.state.change_feed)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute) if settings.rate_limit_per_minute else None
    # Failed authentications, per client address: guessing keys costs a lookup each, and has no key to limit.
    app.state.auth_failures = RateLimiter(settings.rate_limit_per_minute) if settings.rate_limit_per_minute else None
    install_error_handlers(app)

    app.include_router(health.router)
    secured = [Depends(authenticate)]
    for module in (files, lineages, versions, jobs, stream, capabilities, keys, workers, inference):
        app.include_router(module.router, prefix="/v1", dependencies=secured)
    app.include_router(metrics.router, dependencies=secured)
    dashboard.mount(app)
    app.add_middleware(RequestGuard)
    app.state.metrics = Metrics(app.state.reads.cache)
    app.add_middleware(HttpMetricsMiddleware, metrics=app.state.metrics)
    return app
