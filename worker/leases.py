"""Leases taken with compare-and-set UPDATEs: the lineage lock and the job lease.

One code path for PostgreSQL and SQLite. A lease expires unless its holder renews it, so a
killed worker frees its lineage and its job without anyone cleaning up after it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import timedelta
from functools import lru_cache
from typing import Self

from sqlalchemy import or_, update

from app.core.db.session import rows_matched, session_scope
from app.core.db.tables import Job, Model, utcnow
from app.core.settings import get_settings

log = logging.getLogger("sculpt.worker")


@lru_cache
def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _expiry():
    return utcnow() + timedelta(seconds=get_settings().lease_seconds)


def try_lock_lineage(model_id: str, owner: str) -> bool:
    now = utcnow()
    with session_scope() as session:
        taken = rows_matched(session, (
            update(Model)
            .where(Model.id == model_id,
                   or_(Model.lock_owner.is_(None), Model.lock_owner == owner, Model.lock_expires_at < now))
            .values(lock_owner=owner, lock_expires_at=_expiry())
        ))
        return taken == 1


def release_lineage(model_id: str, owner: str) -> None:
    with session_scope() as session:
        session.execute(
            update(Model).where(Model.id == model_id, Model.lock_owner == owner)
            .values(lock_owner=None, lock_expires_at=None)
        )


def renew(model_id: str, job_id: str | None, owner: str) -> bool:
    """Extend both leases; False when another worker has taken the lineage over."""
    with session_scope() as session:
        expiry = _expiry()
        held = rows_matched(session, (
            update(Model).where(Model.id == model_id, Model.lock_owner == owner).values(lock_expires_at=expiry)
        )) == 1
        if job_id is not None:
            session.execute(
                update(Job).where(Job.id == job_id, Job.lease_owner == owner)
                .values(lease_expires_at=expiry, heartbeat_at=utcnow())
            )
        return held


class Heartbeat:
    """Renews the leases in a background thread while the job runs in the foreground."""

    def __init__(self, model_id: str, owner: str) -> None:
        self.model_id = model_id
        self.owner = owner
        self.job_id: str | None = None
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sculpt-heartbeat", daemon=True)

    def _run(self) -> None:
        interval = get_settings().heartbeat_seconds
        while not self._stop.wait(interval):
            try:
                if not renew(self.model_id, self.job_id, self.owner):
                    self.lost.set()
            except Exception as exc:  # noqa: BLE001 - a database blip: the lease outlives several beats
                log.warning("heartbeat for lineage %s failed: %s", self.model_id, exc)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
