"""Bearer-key authentication for ``/v1``, scopes, the per-key rate limit, and the open mode.

Whether a key is needed is decided by how the API is served, never by how many keys exist: bound to a
non-loopback host (or with SCULPT_REQUIRE_AUTH=true) every ``/v1`` call needs a valid, unexpired,
unrevoked key, and with none left every call is refused. Only a server that does not require auth (the
embedded one on loopback) is open, to any client but a foreign web page (``app.http.origin``), while no key
was ever created on it: revoking its last key locks it, as in server mode, rather than opening it again.
Keys are looked up in the database, or in server mode in a per-process cache that PostgreSQL's change
notifications empty as the revoking transaction commits: a revocation reaches every API process within
milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.core.db.tables import utcnow
from app.core.errors import Forbidden, RateLimited, Unauthorized
from app.core.settings import Settings, get_settings
from app.http.cached_reads import CachedReads
from app.http.origin import check_open_request
from app.http.ratelimit import RateLimiter
from app.keys.schemas import SCOPES
from app.keys.service import any_usable_key

ANONYMOUS = "anonymous"
bearer = HTTPBearer(auto_error=False, description="An API key made with `sculpt keys create NAME` or POST /v1/keys.")
CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str] = frozenset(SCOPES)


def open_bind_refusal(settings: Settings, session: Session) -> str | None:
    """Why serving as configured must be refused (auth required and no usable key), or None when it is fine."""
    if not settings.auth_required or any_usable_key(session):
        return None
    return (f"refusing to serve on {settings.bind_host} without API keys: create one with "
            "`sculpt keys create NAME` or bind to 127.0.0.1")


async def authenticate(request: Request,
                       credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    # On the event loop: with the change feed live, a known key (or the open mode) is answered from memory.
    reads: CachedReads = request.app.state.reads
    failures: RateLimiter | None = request.app.state.auth_failures
    address = request.client.host if request.client else "unknown"
    if credentials is not None and failures is not None and (wait := failures.waiting(address)):
        raise RateLimited(f"Too many requests with invalid API keys from {address}; retry in {wait} s",
                          headers={"Retry-After": str(wait)})
    key = await reads.key(credentials.credentials) if credentials is not None else None
    if key is not None:
        if key.expired(utcnow()):
            raise Unauthorized(f"API key '{key.name}' has expired", code="expired_api_key", headers=CHALLENGE)
        principal = Principal(key.name, key.scopes)
    elif not get_settings().auth_required and not await reads.any_key_created():
        check_open_request(request, get_settings())  # no key to stop a web page: its Host and Origin must
        principal = Principal(ANONYMOUS)  # whatever key a client sends (the openai client always sends one)
    elif credentials is None:
        raise Unauthorized("Missing API key: send 'Authorization: Bearer <key>'", headers=CHALLENGE)
    else:
        if failures is not None:
            failures.acquire(address)
        raise Unauthorized("Invalid or revoked API key", headers=CHALLENGE)
    limiter = request.app.state.rate_limiter
    if limiter is not None:
        wait = limiter.acquire(principal.name)
        if wait:
            raise RateLimited(f"Rate limit reached for '{principal.name}'; retry in {wait} s",
                              headers={"Retry-After": str(wait)})
    return principal


# Routes that record who acted take this; FastAPI runs authenticate once per request.
PrincipalDep = Annotated[Principal, Depends(authenticate)]


def _requiring(scope: str):
    async def check(request: Request, principal: PrincipalDep) -> Principal:
        if scope not in principal.scopes:
            held = ", ".join(s for s in SCOPES if s in principal.scopes)
            raise Forbidden(f"API key '{principal.name}' lacks the '{scope}' scope that {request.method} "
                            f"{request.url.path} needs (it has: {held})")
        return principal

    return Depends(check)


# Every key may read (any /v1 route needs a key); routes that change things add one of these.
TRAIN = _requiring("train")
ADMIN = _requiring("admin")
