"""Bearer-key authentication for ``/v1``, the per-key rate limit, and the open-mode rule.

With no active key the service is open (every caller is "anonymous"), which ``serve`` allows only
on a loopback address. With keys, every ``/v1`` call needs a valid, unrevoked one. Keys are looked up in
the database, or in server mode in a per-process cache that PostgreSQL's change notifications empty as the
revoking transaction commits: a revocation reaches every API process within milliseconds.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.core.errors import RateLimited, Unauthorized
from app.http.cached_reads import CachedReads
from app.keys.service import any_active_key

ANONYMOUS = "anonymous"
bearer = HTTPBearer(auto_error=False, description="An API key made with `sculpt keys create NAME`.")


@dataclass(frozen=True)
class Principal:
    name: str


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_bind_refusal(host: str, session: Session) -> str | None:
    """Why serving on ``host`` must be refused (no keys and not loopback), or None when it is fine."""
    if is_loopback(host) or any_active_key(session):
        return None
    return (f"refusing to serve on {host} without API keys: create one with `sculpt keys create NAME` "
            "or bind to 127.0.0.1")


async def authenticate(request: Request,
                       credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    # On the event loop: with the change feed live, a known key (or the open mode) is answered from memory.
    reads: CachedReads = request.app.state.reads
    secret = credentials.credentials if credentials is not None else None
    name = await reads.key_name(secret) if secret is not None else None
    if name is not None:
        principal = Principal(name)
    elif not await reads.any_active_key():
        principal = Principal(ANONYMOUS)
    elif secret is None:
        raise Unauthorized("Missing API key: send 'Authorization: Bearer <key>'",
                           headers={"WWW-Authenticate": "Bearer"})
    else:
        raise Unauthorized("Invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    limiter = request.app.state.rate_limiter
    if limiter is not None:
        wait = limiter.acquire(principal.name)
        if wait:
            raise RateLimited(f"Rate limit reached for '{principal.name}'; retry in {wait} s",
                              headers={"Retry-After": str(wait)})
    return principal


# Routes that record who acted take this; FastAPI runs authenticate once per request.
PrincipalDep = Annotated[Principal, Depends(authenticate)]
