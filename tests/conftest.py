"""Shared fixtures: an isolated Sculpt per test on SQLite (embedded) or PostgreSQL + Redis (server).

- ``sqlite_env``: fresh SCULPT_HOME under tmp_path, embedded broker, migrated. Yields the Settings.
- ``pg_env``: one fresh PostgreSQL database ``sculpt_test_<random>`` per test session (migrated once,
  emptied before each test, dropped at the end) and a Redis db index 1-15 (flushed before each test
  and at the end).
- ``sqlite_client`` / ``pg_client``: a FastAPI TestClient on that environment.
- ``client``: parametrized over both backends (ids ``sqlite`` and ``postgres``).
- ``base_model_dir``: a folder that passes base-model registration (config.json + safetensors).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import text

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_HOST = "redis://127.0.0.1:6379"


def reset_caches() -> None:
    """Forget per-process singletons so the next use reads the current environment."""
    from app.core.broker import celery_client
    from app.core.settings import get_settings

    get_settings.cache_clear()
    celery_client.cache_clear()


def _base_environment(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    for name in ("SCULPT_DATABASE_URL", "SCULPT_BROKER_URL", "SCULPT_ARTIFACT_ROOT", "SCULPT_MODEL_ROOTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SCULPT_HOME", str(home))
    monkeypatch.setenv("SCULPT_MODEL_ROOTS", str(home.parent))
    monkeypatch.setenv("SCULPT_RATE_LIMIT_PER_MINUTE", "0")
    monkeypatch.setenv("SCULPT_ALLOWED_HOSTS", "testserver")  # the TestClient's Host


@pytest.fixture
def sqlite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from app.core.migrate import upgrade_to_head
    from app.core.settings import get_settings

    _base_environment(monkeypatch, tmp_path / "home")
    reset_caches()
    upgrade_to_head()
    yield get_settings()
    reset_caches()


@pytest.fixture(scope="session")
def pg_database_url():
    """A fresh, migrated PostgreSQL database for this test session; dropped afterwards."""
    from app.core.db.session import engine_for
    from app.core.migrate import upgrade_to_head

    name = f"sculpt_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        upgrade_to_head(url)
        yield url
    finally:
        engine_for(url).dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url():
    """A Redis db index of its own for this test session; flushed afterwards."""
    url = f"{REDIS_HOST}/{secrets.randbelow(15) + 1}"
    yield url
    _flush(url)


def _flush(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def empty_database(url: str) -> None:
    from app.core.db.session import engine_for
    from app.core.db.tables import Base

    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine_for(url).begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def pg_env(pg_database_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from app.core.settings import get_settings

    _base_environment(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("SCULPT_DATABASE_URL", pg_database_url)
    monkeypatch.setenv("SCULPT_BROKER_URL", redis_url)
    reset_caches()
    empty_database(pg_database_url)
    _flush(redis_url)  # no job message from an earlier test may reach this test's workers
    yield get_settings()
    reset_caches()


def _client() -> TestClient:
    from app.main import create_app

    return TestClient(create_app())


@pytest.fixture
def sqlite_client(sqlite_env) -> TestClient:
    return _client()


@pytest.fixture
def pg_client(pg_env) -> TestClient:
    return _client()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])])
def client(request) -> TestClient:
    request.getfixturevalue("sqlite_env" if request.param == "sqlite" else "pg_env")
    return _client()


@pytest.fixture
def base_model_dir(tmp_path: Path) -> Path:
    """Enough of a Hugging Face folder to register (the API never loads it)."""
    folder = tmp_path / "base-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (folder / "model.safetensors").write_bytes(b"\0" * 16)
    return folder
