"""Alembic environment: one history for PostgreSQL and SQLite (batch mode on SQLite)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from app.core.db.session import engine_for
from app.core.db.tables import Base
from app.core.settings import get_settings

config = context.config
MIGRATION_LOCK_KEY = 0x5C01_7A1E  # any constant; names Sculpt's migration lock in pg_locks
target_metadata = Base.metadata


def run_migrations() -> None:
    url = config.attributes.get("url") or get_settings().resolved_database_url
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    with engine_for(url).connect() as connection:
        _run(connection)


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # The API, the one-shot migrate service and workers may all start at once: one migrates,
            # the others wait here and then find the schema at head.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()
    connection.commit()


if context.is_offline_mode():
    raise SystemExit("Sculpt migrations run online only: `sculpt migrate`")
run_migrations()
