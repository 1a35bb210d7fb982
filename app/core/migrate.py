"""Run the Alembic history programmatically (``sculpt migrate``, ``sculpt serve``, the worker, tests)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

import migrations
from app.core.settings import get_settings


def alembic_config(url: str | None = None) -> Config:
    # __path__, not __file__: an older editable install may map migrations as a namespace package.
    folder = Path(next(iter(migrations.__path__)))
    config = Config(str(folder / "alembic.ini"))
    config.set_main_option("script_location", str(folder))
    config.attributes["url"] = url or get_settings().resolved_database_url
    return config


@contextmanager
def _sqlite_migration_lock(url: str) -> Iterator[None]:
    """Serialise migrations of one SQLite file across processes (PostgreSQL locks in migrations/env.py)."""
    database = make_url(url).database
    if not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).with_name(Path(database).name + ".migrate-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade_to_head(url: str | None = None) -> None:
    """Bring the database (default: the configured one) to the latest schema; safe to repeat and to
    run from several processes at once."""
    url = url or get_settings().resolved_database_url
    if url.startswith("sqlite"):
        with _sqlite_migration_lock(url):
            command.upgrade(alembic_config(url), "head")
    else:
        command.upgrade(alembic_config(url), "head")
