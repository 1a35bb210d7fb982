"""Migration 0007 on a database that already has keys: they become admin keys and keep working, on SQLite
and PostgreSQL; the change-notification trigger on api_keys survives the table change."""

from __future__ import annotations

import secrets

import psycopg
import pytest
from alembic import command
from sqlalchemy import inspect, text

from app.core.db.session import engine_for, new_session
from app.core.migrate import alembic_config, upgrade_to_head
from app.keys import service as keys
from tests.conftest import PG_ADMIN


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    name = f"sculpt_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        yield url
    finally:
        engine_for(url).dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_existing_keys_become_admin_keys(database_url, monkeypatch):
    from app.core.settings import get_settings

    command.upgrade(alembic_config(database_url), "0005")
    with engine_for(database_url).begin() as connection:
        connection.execute(text("INSERT INTO api_keys (name, prefix, key_hash, created_at) "
                                "VALUES ('ci', 'sk-sculpt-abcd', :hash, CURRENT_TIMESTAMP)"),
                           {"hash": keys.hash_key("sk-sculpt-old-secret")})
    upgrade_to_head(database_url)

    monkeypatch.setenv("SCULPT_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        with new_session() as session:
            old = keys.active_key(session, keys.hash_key("sk-sculpt-old-secret"))
            assert old.name == "ci" and old.scopes == {"read", "train", "admin"} and old.expires_at is None
            assert keys.revoke_key(session, "ci")
            keys.create_key(session, "ci", ["read"])  # the revoked key's name is free
            with pytest.raises(Exception, match="already exists"):
                keys.create_key(session, "ci", ["read"])
        if database_url.startswith("postgresql"):
            with engine_for(database_url).connect() as connection:
                triggers = connection.scalars(text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'api_keys'::regclass "
                                                   "AND NOT tgisinternal")).all()
            assert triggers == ["api_keys_notify"]
    finally:
        get_settings.cache_clear()


def _key_columns(url: str) -> set[str]:
    engine = engine_for(url)
    try:
        return {column["name"] for column in inspect(engine).get_columns("api_keys")}
    finally:
        engine.dispose()


def test_the_migration_downgrades_and_upgrades_again(database_url):
    upgrade_to_head(database_url)
    command.downgrade(alembic_config(database_url), "0005")
    assert not {"scopes", "expires_at"} & _key_columns(database_url)
    upgrade_to_head(database_url)
    assert {"scopes", "expires_at"} <= _key_columns(database_url)
