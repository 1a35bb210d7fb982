"""Alembic environment: one history for PostgreSQL and SQLite (batch mode on SQLite)."""

from __future__ import annotations

from alembic import context

from app.db.session import engine_for
from app.db.tables import Base
from app.settings import get_settings

config = context.config
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
        context.run_migrations()
    connection.commit()


if context.is_offline_mode():
    raise SystemExit("Sculpt migrations run online only: `sculpt migrate`")
run_migrations()
