"""Bearer-key authentication for ``/v1``, the per-key rate limit, and the open-mode rule.

With no active key the service is open (every caller is "anonymous"), which ``serve`` allows only
on a loopback address. With keys, every ``/v1`` call needs a valid, unrevoked one; revocation is
read from the database on each request, so it takes effect at once.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.db.session import new_session
from app.errors import RateLimited, Unauthorized
from app.services.keys import active_key_name, any_active_key

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


def _principal(session: Session, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is not None:
        name = active_key_name(session, credentials.credentials)
        if name:
            return Principal(name)
    if not any_active_key(session):
        return Principal(ANONYMOUS)
    if credentials is None:
        raise Unauthorized("Missing API key: send 'Authorization: Bearer <key>'",
                           headers={"WWW-Authenticate": "Bearer"})
    raise Unauthorized("Invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})


def authenticate(request: Request,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    # A session of its own, closed within this thread hop: the route's session takes a connection
    # only once the route runs, so no connection waits idle between the two hops.
    with new_session(reads_only=True) as session:
        principal = _principal(session, credentials)
    limiter = request.app.state.rate_limiter
    if limiter is not None:
        wait = limiter.acquire(principal.name)
        if wait:
            raise RateLimited(f"Rate limit reached for '{principal.name}'; retry in {wait} s",
                              headers={"Retry-After": str(wait)})
    return principal


# Routes that record who acted take this; FastAPI runs authenticate once per request.
PrincipalDep = Annotated[Principal, Depends(authenticate)]
