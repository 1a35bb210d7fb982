from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import assert_error


def test_unknown_route_and_method_use_the_error_shape(sqlite_client):
    assert_error(sqlite_client.get("/v1/nothing-here"), 404)
    assert_error(sqlite_client.put("/v1/models"), 405)


def test_malformed_json_is_422(sqlite_client):
    response = sqlite_client.post("/v1/models", content=b"{not json", headers={"content-type": "application/json"})
    assert_error(response, 422)


def test_oversized_json_body_is_413(sqlite_client):
    response = sqlite_client.post("/v1/models", json={"id": "m", "base_model": "x" * (2 * 1024 * 1024)})
    assert_error(response, 413, code="payload_too_large")


def test_unexpected_error_is_a_plain_500_without_traceback(sqlite_env, monkeypatch, caplog):
    import app.lineages.service as lineages_service
    from app.main import create_app

    def explode(_session):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(lineages_service, "list_models", explode)
    client = TestClient(create_app(), raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="sculpt.api"):
        response = client.get("/v1/models")
    error = assert_error(response, 500, code="internal_error")
    assert "secret" not in response.text and "Traceback" not in response.text
    assert error["type"] == "server_error"
    logged = [r for r in caplog.records if "secret internal detail" in r.getMessage()]
    assert logged and "GET /v1/models: RuntimeError at " in logged[0].getMessage()
    assert all(r.exc_info is None and r.exc_text is None for r in caplog.records)  # no stack trace in logs


def test_health_and_ready(client):
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


@pytest.mark.postgres
@pytest.mark.redis
def test_not_ready_names_the_broker(pg_env, monkeypatch):
    from app.core.settings import get_settings
    from app.main import create_app

    monkeypatch.setenv("SCULPT_BROKER_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    error = assert_error(TestClient(create_app()).get("/readyz"), 503, code="not_ready")
    assert error["param"] == "broker" and "broker" in error["message"]


def test_not_ready_names_the_database(sqlite_env, monkeypatch):
    from app.core.settings import get_settings
    from app.main import create_app

    monkeypatch.setenv("SCULPT_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/none")
    get_settings.cache_clear()
    client = TestClient(create_app())
    error = assert_error(client.get("/readyz"), 503, code="not_ready")
    assert error["param"] == "database"
    assert_error(client.get("/v1/models"), 503, code="database_unavailable")


def test_embedded_broker_folder_must_be_writable(sqlite_env):
    import shutil

    from app.health.service import broker_problem

    assert broker_problem(sqlite_env) is None
    shutil.rmtree(sqlite_env.broker_folder)
    sqlite_env.broker_folder.write_text("a file where the broker folder should be")
    assert "broker unreachable" in broker_problem(sqlite_env)


def test_nul_characters_are_refused_not_crashing(client, base_model_dir):
    from tests.api.helpers import register

    assert_error(client.get("/v1/files/file-%00x"), 400, code="invalid_url")
    assert_error(client.get("/v1/fine_tuning/jobs", params={"after": "a\x00b"}), 400, code="invalid_url")
    register(client, "m", base_model_dir)
    response = client.post("/v1/models/m/head", json={"version": 1, "reason": "nul\x00here"})
    assert_error(response, 422, param="reason")


def test_openapi_and_docs_are_served(sqlite_client):
    spec = sqlite_client.get("/openapi.json").json()
    assert "/v1/fine_tuning/jobs" in spec["paths"] and "/v1/models/{model_id}/evaluations" in spec["paths"]
    schemas = spec["components"]["schemas"]
    for name in ("JobCreate", "JobObject", "FileObject", "ModelCreate", "EvaluationsObject"):
        assert schemas[name].get("examples"), name
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()
    assert "HTTPValidationError" not in schemas  # 422s are documented in the error shape they really have
    assert sqlite_client.get("/docs").status_code == 200


def test_a_body_that_is_not_json_says_so(sqlite_client):
    response = sqlite_client.post("/v1/fine_tuning/jobs", content=b'{"model": "m",',
                                  headers={"content-type": "application/json"})
    error = assert_error(response, 422, code="invalid_json")
    assert error["param"] is None
    assert error["message"].startswith("The request body is not valid JSON")
