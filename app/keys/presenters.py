"""Key rows to API objects."""

from __future__ import annotations

from app.core.db.tables import ApiKey
from app.core.timeutil import unix
from app.keys.schemas import KeyCreated, KeyObject
from app.keys.service import public_id


def key_object(row: ApiKey) -> KeyObject:
    return KeyObject(id=public_id(row), name=row.name, prefix=row.prefix, scopes=row.scopes.split(","),
                     created_at=unix(row.created_at), expires_at=unix(row.expires_at),
                     revoked_at=unix(row.revoked_at))


def created_key_object(row: ApiKey, secret: str) -> KeyCreated:
    return KeyCreated(**key_object(row).model_dump(), secret=secret)
