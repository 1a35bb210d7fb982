"""Run the Alembic history programmatically (``sculpt migrate``, ``sculpt serve``, the worker, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations

from app.settings import get_settings


def alembic_config(url: str | None = None) -> Config:
    folder = Path(migrations.__file__).parent
    config = Config(str(folder / "alembic.ini"))
    config.set_main_option("script_location", str(folder))
    config.attributes["url"] = url or get_settings().resolved_database_url
    return config


def upgrade_to_head(url: str | None = None) -> None:
    """Bring the database (default: the configured one) to the latest schema; safe to repeat."""
    settings = get_settings()
    if (url or settings.resolved_database_url).startswith("sqlite"):
        settings.home_path.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")
