"""API keys: created once (the secret is shown only then), stored as sha256, revoked at once."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.db.tables import ApiKey, utcnow

KEY_PREFIX = "sk-sculpt-"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(session: Session, name: str) -> str:
    """Return the new secret; only its hash and a short prefix are stored."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(name=name, prefix=secret[: len(KEY_PREFIX) + 4], key_hash=hash_key(secret)))
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ValueError(f"a key named '{name}' already exists") from exc
    return secret


def revoke_key(session: Session, name: str) -> bool:
    key = session.scalar(select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None)))
    if key is None:
        return False
    key.revoked_at = utcnow()
    session.commit()
    return True


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)))


def active_key_name(session: Session, key_hash: str) -> str | None:
    return session.scalar(select(ApiKey.name).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)))


def any_active_key(session: Session) -> bool:
    return session.scalar(select(ApiKey.id).where(ApiKey.revoked_at.is_(None)).limit(1)) is not None
