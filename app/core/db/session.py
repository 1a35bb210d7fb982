"""Engine and session factory, one per database URL per process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Executable, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from app.core.settings import get_settings

# A pooled PostgreSQL connection idle for longer than this is pinged before use, so the pool recovers on its
# own after PostgreSQL restarts. Busy connections skip that round trip (SQLAlchemy's pre_ping pays it on
# every checkout): if one of them turns out dead, that request fails with a 503 and SQLAlchemy drops the
# whole pool, so the next requests connect afresh.
STALE_CONNECTION_SECONDS = 1.0


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the API read while the worker writes; the busy timeout rides out short write locks.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# 20 connections stay open: under steady load a smaller pool keeps closing and reopening overflow connections,
# and each new PostgreSQL connection forks a server process (measured: that churn took a third of the API's
# time at 50 concurrent requests). 10 more for bursts; past that, requests wait for one rather than fail.
POSTGRES_POOL = {"pool_size": 20, "max_overflow": 10, "pool_timeout": 30, "connect_args": {"connect_timeout": 5}}


@lru_cache
def engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, **POSTGRES_POOL)
    _ping_when_stale(engine)
    return engine


def _ping_when_stale(engine: Engine) -> None:
    def mark_used(_dbapi_connection, record, *_args) -> None:
        record.info["idle_since"] = time.monotonic()

    def ping_if_stale(dbapi_connection, record, _proxy) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) <= STALE_CONNECTION_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
            dbapi_connection.rollback()  # the ping opened a transaction; leave the connection as it was
        except Exception as exc:
            raise DisconnectionError("pooled connection failed its ping") from exc  # the pool reconnects

    event.listen(engine, "connect", mark_used)
    event.listen(engine, "checkin", mark_used)
    event.listen(engine, "checkout", ping_if_stale)


def get_engine() -> Engine:
    settings = get_settings()
    if settings.resolved_database_url.startswith("sqlite"):
        settings.home_path.mkdir(parents=True, exist_ok=True)
    return engine_for(settings.resolved_database_url)


@lru_cache
def _factory(url: str, reads_only: bool) -> sessionmaker[Session]:
    engine = engine_for(url)
    # Reads need no transaction: autocommit spares each request a BEGIN and a ROLLBACK round trip.
    bind = engine.execution_options(isolation_level="AUTOCOMMIT") if reads_only else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


def new_session(*, reads_only: bool = False) -> Session:
    """A session; ``reads_only`` for work that writes nothing (each statement then sees the latest commits)."""
    get_engine()
    return _factory(get_settings().resolved_database_url, reads_only)()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A unit of work: commit on success, roll back on error."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def rows_matched(session: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE and return how many rows it matched. SQLAlchemy types ``Session.execute`` as
    returning a ``Result``, which lacks ``rowcount``; for these statements it is a ``CursorResult``."""
    return cast(CursorResult[Any], session.execute(statement)).rowcount
