"""The Alembic history and the SQLAlchemy tables agree, on SQLite and on PostgreSQL."""

from __future__ import annotations

import secrets

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from app.core.db.session import engine_for
from app.core.db.tables import Base
from app.core.migrate import alembic_config, upgrade_to_head


def differences(url: str) -> list:
    with engine_for(url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def current_revision(url: str) -> str | None:
    with engine_for(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_one_linear_history():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_upgrade_from_empty_matches_the_tables(backend, request):
    settings = request.getfixturevalue("sqlite_env" if backend == "sqlite" else "pg_env")
    url = settings.resolved_database_url
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert current_revision(url) == head
    assert set(inspect(engine_for(url)).get_table_names()) >= {t.name for t in Base.metadata.sorted_tables}
    assert differences(url) == []
    upgrade_to_head(url)  # a second run is a no-op
    assert current_revision(url) == head


def test_cli_migrate_creates_the_embedded_database(tmp_path, monkeypatch):
    from app.cli.main import main
    from app.core.settings import get_settings

    monkeypatch.delenv("SCULPT_DATABASE_URL", raising=False)
    monkeypatch.setenv("SCULPT_HOME", str(tmp_path / "fresh"))
    get_settings.cache_clear()
    try:
        assert main(["migrate"]) == 0
        url = get_settings().resolved_database_url
        assert (tmp_path / "fresh" / "sculpt.db").exists() and differences(url) == []
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_concurrent_upgrades_from_several_processes(backend, tmp_path):
    """The API, the migrate service and workers may all start at once on an empty database."""
    import subprocess
    import sys

    import psycopg

    from tests.conftest import PG_ADMIN

    name = f"sculpt_test_{secrets.token_hex(6)}"
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'home' / 'sculpt.db'}"
    else:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        code = f"from app.core.migrate import upgrade_to_head; upgrade_to_head({url!r})"
        processes = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
                     for _ in range(3)]
        results = [(p.wait(timeout=120), p.stderr.read()) for p in processes]
        assert [rc for rc, _ in results] == [0, 0, 0], results
        assert differences(url) == []
    finally:
        engine_for(url).dispose()
        if backend == "postgres":
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_0006_moves_suite_files_into_the_map_and_back(backend, request):
    from alembic import command
    from sqlalchemy import text

    settings = request.getfixturevalue("sqlite_env" if backend == "sqlite" else "pg_env")
    url = settings.resolved_database_url
    config = alembic_config(url)
    command.downgrade(config, "0005")
    with engine_for(url).begin() as connection:
        for file_id in ("file-ref", "file-safe"):
            connection.execute(text(
                "INSERT INTO files (id, filename, purpose, bytes, sha256, line_count, record_format, status, "
                "created_at) VALUES (:id, 'f.jsonl', 'reference', 1, 'x', 1, 'text', 'processed', "
                "CURRENT_TIMESTAMP)"), {"id": file_id})
        for model_id, reference, safety in (("both", "file-ref", "file-safe"), ("one", None, "file-safe"),
                                            ("none", None, None)):
            connection.execute(text(
                "INSERT INTO models (id, base_model, head_version, gates, reference_file_id, safety_file_id, "
                "created_at) VALUES (:id, 'b', 1, '{}', :ref, :safe, CURRENT_TIMESTAMP)"),
                {"id": model_id, "ref": reference, "safe": safety})
    command.upgrade(config, "0006")
    from app.core.db.tables import Model

    with engine_for(url).connect() as connection:
        moved = dict(connection.execute(Model.__table__.select().with_only_columns(Model.id, Model.suites)).all())
    assert moved == {"both": {"reference": "file-ref", "safety": "file-safe"}, "one": {"safety": "file-safe"},
                     "none": {}}
    command.downgrade(config, "0005")
    with engine_for(url).connect() as connection:
        back = {row[0]: (row[1], row[2]) for row in connection.execute(
            text("SELECT id, reference_file_id, safety_file_id FROM models"))}
    assert back == {"both": ("file-ref", "file-safe"), "one": (None, "file-safe"), "none": (None, None)}
    upgrade_to_head(url)
    assert differences(url) == []
