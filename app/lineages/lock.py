"""The lineage lock: a lease a worker holds on a lineage while it runs the lineage's jobs, one at a time.

Taken and renewed with compare-and-set UPDATEs, one code path for PostgreSQL and SQLite. It expires unless
its holder renews it, so a killed worker frees its lineage without anyone cleaning up after it. A job's own
lease (``app.jobs.attempts``) expires with it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from app.core.db.session import rows_matched, session_scope
from app.core.db.tables import Model, utcnow
from app.core.settings import get_settings


def lease_expiry() -> datetime:
    """When a lease taken or renewed now expires."""
    return utcnow() + timedelta(seconds=get_settings().lease_seconds)


def unheld_at(now: datetime) -> ColumnElement[bool]:
    """The condition on a lineage's row that no live worker holds its lock."""
    return or_(Model.lock_owner.is_(None), Model.lock_expires_at < now)


def try_lock(model_id: str, owner: str) -> bool:
    """Take the lineage's lock for ``owner``; False when a live worker holds it."""
    now = utcnow()
    with session_scope() as session:
        return rows_matched(session, (
            update(Model)
            .where(Model.id == model_id, or_(unheld_at(now), Model.lock_owner == owner))
            .values(lock_owner=owner, lock_expires_at=lease_expiry())
        )) == 1


def release(model_id: str, owner: str) -> None:
    with session_scope() as session:
        session.execute(update(Model).where(Model.id == model_id, Model.lock_owner == owner)
                        .values(lock_owner=None, lock_expires_at=None))


def renew(session: Session, model_id: str, owner: str, expiry: datetime) -> bool:
    """Extend ``owner``'s lock (the caller commits); False when another worker has taken the lineage over."""
    return rows_matched(session, update(Model).where(Model.id == model_id, Model.lock_owner == owner)
                        .values(lock_expires_at=expiry)) == 1


def held(session: Session, model_id: str, owner: str) -> Model | None:
    """The lineage's row if ``owner`` still holds its lock, else None: checked in the transaction that records
    what the holder did, so a worker whose lineage was taken over records nothing."""
    model = session.get_one(Model, model_id)
    return model if model.lock_owner == owner else None


def unheld(session: Session, now: datetime) -> list[str]:
    """The lineages no live worker holds."""
    return list(session.scalars(select(Model.id).where(unheld_at(now))))
