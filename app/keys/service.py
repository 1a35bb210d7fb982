"""API keys: created once (the secret is shown only then), stored as sha256, scoped, optionally expiring,
revoked at once. A name belongs to one active key at a time."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.db.tables import ApiKey, utcnow
from app.core.errors import Conflict, NotFound
from app.keys.schemas import SCOPES

KEY_PREFIX = "sk-sculpt-"
ID_PREFIX = "key-"
PUBLIC_ID = re.compile(rf"^{ID_PREFIX}(\d{{1,18}})$")


@dataclass(frozen=True)
class KeyFacts:
    """What authentication needs of an active key; cached by API processes, so expiry is checked on use."""

    name: str
    scopes: frozenset[str]
    expires_at: datetime | None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and _aware(self.expires_at) <= now


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite hands back naive UTC


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def stored_scopes(scopes: Iterable[str]) -> str:
    wanted = set(scopes)
    unknown = wanted - set(SCOPES)
    if unknown or not wanted:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(sorted(unknown)) or 'none'}")
    return ",".join(s for s in SCOPES if s in wanted)


def granted(stored: str) -> frozenset[str]:
    """The scopes a key holds: each stored scope with the ones it includes (admin ⊃ train ⊃ read)."""
    top = max(SCOPES.index(s) for s in stored.split(","))
    return frozenset(SCOPES[: top + 1])


def public_id(key: ApiKey) -> str:
    return f"{ID_PREFIX}{key.id}"


def issue_key(session: Session, name: str, scopes: Iterable[str] = ("admin",),
              expires_in: timedelta | None = None) -> tuple[ApiKey, str]:
    """The new key's row and its secret; only the secret's hash and a short prefix are stored."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, prefix=secret[: len(KEY_PREFIX) + 4], key_hash=hash_key(secret),
                 scopes=stored_scopes(scopes), expires_at=utcnow() + expires_in if expires_in else None)
    session.add(key)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"an active key named '{name}' already exists; revoke it first or pick another name",
                       param="name", code="key_exists") from exc
    return key, secret


def create_key(session: Session, name: str, scopes: Iterable[str] = ("admin",),
               expires_in: timedelta | None = None) -> str:
    """Return the new key's secret."""
    return issue_key(session, name, scopes, expires_in)[1]


def _revoke(session: Session, key: ApiKey) -> ApiKey:
    key.revoked_at = utcnow()
    session.commit()
    return key


def revoke_key(session: Session, name: str) -> bool:
    """Revoke the active key of that name; False if there is none."""
    key = session.scalar(select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None)))
    if key is None:
        return False
    _revoke(session, key)
    return True


def get_key(session: Session, key_id: str) -> ApiKey:
    match = PUBLIC_ID.match(key_id)
    key = session.get(ApiKey, int(match.group(1))) if match else None
    if key is None:
        raise NotFound(f"No API key with id '{key_id}'", param="key_id")
    return key


def revoke_key_by_id(session: Session, key_id: str) -> ApiKey:
    """Revoke a key by its public id; revoking a revoked key changes nothing."""
    key = get_key(session, key_id)
    return key if key.revoked_at is not None else _revoke(session, key)


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def active_key(session: Session, key_hash: str) -> KeyFacts | None:
    """The unrevoked key with this hash (perhaps expired: the caller checks, at the time of use)."""
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)))
    return None if key is None else KeyFacts(key.name, granted(key.scopes), key.expires_at)


def any_key_created(session: Session) -> bool:
    """A key was ever created here, revoked or expired ones included: a loopback server is open only until
    then, so revoking its last key (a leaked one, say) locks it instead of opening it to anyone."""
    return session.scalar(select(ApiKey.id).limit(1)) is not None


def any_usable_key(session: Session) -> bool:
    """A key that works now exists: without one, a server that requires auth refuses every request."""
    usable = select(ApiKey.id).where(ApiKey.revoked_at.is_(None),
                                     or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > utcnow()))
    return session.scalar(usable.limit(1)) is not None
