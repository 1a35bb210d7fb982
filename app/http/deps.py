"""Request-scoped dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.core.db.session import new_session
from app.http.cached_reads import CachedReads

READ_METHODS = frozenset({"GET", "HEAD"})


async def get_session(request: Request) -> AsyncIterator[Session]:
    # Async so that the session closes (its connection back to the pool) as soon as the response is
    # ready, not after waiting for a free thread: under load, connections held by requests queued
    # for a thread would exhaust the pool. Creating a session does no I/O.
    session = new_session(reads_only=request.method in READ_METHODS)
    try:
        yield session
    finally:
        session.close()


# Closed when the route returns, before the response is sent: a request's transaction never outlives
# the decision of its response (with FastAPI's default scope it would stay open while the body streams).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_cached_reads(request: Request) -> CachedReads:
    return request.app.state.reads


# Polled routes: async, answered from memory while the change feed is live (see app/cached_reads.py).
CachedReadsDep = Annotated[CachedReads, Depends(get_cached_reads)]
