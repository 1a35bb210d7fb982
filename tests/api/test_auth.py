from __future__ import annotations

from app.core.db.session import new_session
from app.http.auth import open_bind_refusal
from app.keys import service as keys
from tests.api.helpers import assert_error, register


def make_key(name: str) -> str:
    with new_session() as session:
        return keys.create_key(session, name)


def test_open_without_keys_then_closed_with_one(sqlite_client, base_model_dir):
    assert sqlite_client.get("/v1/models").status_code == 200
    secret = make_key("ci")
    error = assert_error(sqlite_client.get("/v1/models"), 401, code="invalid_api_key")
    assert "Bearer" in error["message"]
    assert_error(sqlite_client.get("/v1/models", headers={"Authorization": "Bearer wrong"}), 401)
    good = {"Authorization": f"Bearer {secret}"}
    assert sqlite_client.get("/v1/models", headers=good).status_code == 200
    for path in ("/v1/files", "/v1/fine_tuning/jobs", "/v1/models/x", "/v1/fine_tuning/jobs/x/events"):
        assert sqlite_client.get(path).status_code == 401, path
    assert sqlite_client.get("/healthz").status_code == 200

    sqlite_client.headers.update(good)
    register(sqlite_client, "m", base_model_dir)
    history = sqlite_client.get("/v1/models/m/head/history").json()["data"]
    assert history[0]["actor"] == "ci"


def test_revoked_key_stops_at_once(sqlite_client):
    secret = make_key("pipeline")
    make_key("other")
    headers = {"Authorization": f"Bearer {secret}"}
    assert sqlite_client.get("/v1/models", headers=headers).status_code == 200
    with new_session() as session:
        assert keys.revoke_key(session, "pipeline")
        assert not keys.revoke_key(session, "pipeline")
    assert_error(sqlite_client.get("/v1/models", headers=headers), 401)


def test_keys_are_stored_hashed_and_never_echoed(sqlite_client):
    secret = make_key("ci")
    with new_session() as session:
        stored = keys.list_keys(session)[0]
    assert stored.key_hash == keys.hash_key(secret) and secret not in (stored.key_hash, stored.prefix)
    response = sqlite_client.get("/v1/models", headers={"Authorization": f"Bearer {secret}x"})
    assert secret not in response.text and stored.key_hash not in response.text


def test_bind_rule(sqlite_env):
    with new_session() as session:
        assert open_bind_refusal("127.0.0.1", session) is None
        assert open_bind_refusal("::1", session) is None
        assert "refusing" in open_bind_refusal("0.0.0.0", session)
    make_key("ops")
    with new_session() as session:
        assert open_bind_refusal("0.0.0.0", session) is None


def test_rate_limit(sqlite_env, monkeypatch):
    from fastapi.testclient import TestClient

    from app.core.settings import get_settings
    from app.main import create_app

    monkeypatch.setenv("SCULPT_RATE_LIMIT_PER_MINUTE", "3")
    get_settings.cache_clear()
    client = TestClient(create_app())
    assert [client.get("/v1/models").status_code for _ in range(3)] == [200, 200, 200]
    limited = client.get("/v1/models")
    assert_error(limited, 429, code="rate_limit_exceeded")
    assert int(limited.headers["Retry-After"]) >= 1
    assert client.get("/healthz").status_code == 200


def test_every_v1_operation_needs_a_key_once_keys_exist(sqlite_client):
    make_key("ops")
    spec = sqlite_client.get("/openapi.json").json()
    operations = [(method, path) for path, item in spec["paths"].items() if path.startswith("/v1/")
                  for method in item]
    assert len(operations) >= 15
    for method, path in operations:
        url = path.replace("{model_id}", "m").replace("{file_id}", "file-x").replace("{job_id}", "ftjob-x")
        response = sqlite_client.request(method.upper(), url.replace("{version}", "1"))
        assert response.status_code == 401, (method, path, response.status_code)
