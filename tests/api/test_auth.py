from __future__ import annotations

import time
from datetime import timedelta

from app.core.db.session import new_session
from app.http.auth import open_bind_refusal
from app.keys import service as keys
from app.lineages.gates import default_gates
from tests.api.helpers import assert_error, create_job, register, upload_ok


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


def test_bind_rule(sqlite_env, monkeypatch):
    from app.core.settings import Settings

    def refusal(host: str) -> str | None:
        with new_session() as session:
            return open_bind_refusal(Settings(bind_host=host), session)

    assert refusal("127.0.0.1") is None
    assert refusal("::1") is None
    assert "refusing" in refusal("0.0.0.0")
    monkeypatch.setenv("SCULPT_REQUIRE_AUTH", "false")  # the operator says so: open wherever it is bound
    assert refusal("0.0.0.0") is None
    monkeypatch.setenv("SCULPT_REQUIRE_AUTH", "true")
    assert "refusing" in refusal("127.0.0.1")
    with new_session() as session:  # a key that has expired does not count
        keys.create_key(session, "old", expires_in=timedelta(seconds=-1))
    assert "refusing" in refusal("0.0.0.0")
    make_key("ops")
    assert refusal("0.0.0.0") is None


def serve_on(monkeypatch, host: str) -> None:
    """What `sculpt serve --host HOST` tells its API processes."""
    from app.core.settings import get_settings

    monkeypatch.setenv("SCULPT_BIND_HOST", host)
    get_settings.cache_clear()


def test_revoking_the_last_key_of_an_exposed_server_locks_it(client, monkeypatch, base_model_dir):
    serve_on(monkeypatch, "0.0.0.0")
    secret = make_key("ops")
    good = {"Authorization": f"Bearer {secret}"}
    for _ in range(2):  # the second is answered from memory on PostgreSQL
        assert client.get("/v1/models", headers=good).status_code == 200
    assert client.get("/readyz").status_code == 200
    with new_session() as session:
        assert keys.revoke_key(session, "ops")

    for headers in ({}, good, {"Authorization": "Bearer sk-anything"}):
        assert_error(client.get("/v1/models", headers=headers), 401, code="invalid_api_key")
        assert_error(client.post("/v1/models", json={"id": "m", "base_model": str(base_model_dir)},
                                 headers=headers), 401)
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {make_key('ops-2')}"}).status_code == 200
    with new_session() as session:
        keys.revoke_key(session, "ops-2")
    not_ready = assert_error(client.get("/readyz"), 503, param="auth", code="not_ready")
    assert "no valid API key" in not_ready["message"] and "sculpt keys create" in not_ready["message"]
    assert client.get("/healthz").status_code == 200
    with new_session() as session:
        assert keys.list_keys(session) and not keys.any_usable_key(session)


def test_require_auth_locks_a_loopback_server_without_keys(sqlite_client, monkeypatch):
    monkeypatch.setenv("SCULPT_REQUIRE_AUTH", "true")
    serve_on(monkeypatch, "127.0.0.1")
    assert_error(sqlite_client.get("/v1/models"), 401)
    assert_error(sqlite_client.get("/readyz"), 503, param="auth")


def test_a_loopback_server_without_keys_is_open_whatever_key_a_client_sends(sqlite_client, monkeypatch):
    serve_on(monkeypatch, "127.0.0.1")
    # The openai client always sends some key; the embedded server has none to check it against.
    assert sqlite_client.get("/v1/models", headers={"Authorization": "Bearer sk-placeholder"}).status_code == 200
    assert sqlite_client.get("/readyz").status_code == 200


def test_an_expired_key_is_refused_even_once_cached(client, monkeypatch):
    serve_on(monkeypatch, "0.0.0.0")
    with new_session() as session:
        secret = keys.create_key(session, "short", expires_in=timedelta(seconds=2))
    headers = {"Authorization": f"Bearer {secret}"}
    for _ in range(2):
        assert client.get("/v1/models", headers=headers).status_code == 200
    time.sleep(2.1)
    error = assert_error(client.get("/v1/models", headers=headers), 401, code="expired_api_key")
    assert "'short' has expired" in error["message"]


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


def scoped(client, name: str, scopes: list[str]) -> dict:
    with new_session() as session:
        return {"Authorization": f"Bearer {keys.create_key(session, name, scopes)}"}


# The routes that need other than every GET `read` and every other call `admin`: README.md, "API keys and scopes".
TRAIN_OPERATIONS = {("post", "/v1/files"), ("post", "/v1/fine_tuning/jobs"),
                    ("post", "/v1/fine_tuning/jobs/{job_id}/cancel")}
READ_POSTS = {("post", "/v1/chat/completions"), ("post", "/v1/completions")}  # using a model changes nothing
ADMIN_READS = {("get", "/v1/keys"), ("get", "/v1/workers")}


def _operations(client) -> list[tuple[str, str]]:
    spec = client.get("/openapi.json").json()
    return [(method, path) for path, item in spec["paths"].items() if path.startswith("/v1/") for method in item]


def _call(client, method: str, path: str, headers: dict):
    # A key id that names no key: revoking the caller's own key would turn later calls into 401s.
    url = (path.replace("{model_id}", "m").replace("{file_id}", "file-x").replace("{job_id}", "ftjob-x")
           .replace("{key_id}", "key-999999").replace("{version}", "1"))
    return client.request(method.upper(), url, headers=headers)


def test_each_operation_needs_its_scope(sqlite_client):
    read, train = scoped(sqlite_client, "reader", ["read"]), scoped(sqlite_client, "trainer", ["train"])
    admin = scoped(sqlite_client, "root", ["admin"])
    operations = _operations(sqlite_client)
    assert ("delete", "/v1/keys/{key_id}") in operations and ("post", "/v1/models") in operations
    assert set(operations) >= READ_POSTS and ("delete", "/v1/models/{model_id}/versions/{version}") in operations
    for method, path in operations:
        if (method, path) in ADMIN_READS or (method != "get" and (method, path) not in TRAIN_OPERATIONS | READ_POSTS):
            needs = "admin"
        else:
            needs = "train" if (method, path) in TRAIN_OPERATIONS else "read"
        for holder, headers in (("read", read), ("train", train), ("admin", admin)):
            response = _call(sqlite_client, method, path, headers)
            allowed = ["read", "train", "admin"].index(holder) >= ["read", "train", "admin"].index(needs)
            assert (response.status_code != 403) == allowed, (method, path, holder, response.status_code)
            if not allowed:
                error = assert_error(response, 403, code="insufficient_scope")
                assert f"lacks the '{needs}' scope" in error["message"] and error["type"] == "permission_error"


def test_a_train_key_trains_but_cannot_touch_lineages_or_delete(client, base_model_dir):
    admin, train = scoped(client, "root", ["admin"]), scoped(client, "pipeline", ["train"])
    client.headers.update(admin)
    register(client, "m", base_model_dir)
    client.headers.update(train)
    file_id = upload_ok(client)
    job = create_job(client, "m", file_id, continual={"task": "t1"})
    assert job.status_code == 201, job.text
    assert client.post(f"/v1/fine_tuning/jobs/{job.json()['id']}/cancel").status_code == 200
    error = assert_error(client.post("/v1/models/m/head", json={"version": 1, "reason": "x"}), 403)
    assert error["message"] == ("API key 'pipeline' lacks the 'admin' scope that POST /v1/models/m/head "
                                "needs (it has: read, train)")
    assert_error(client.delete(f"/v1/files/{file_id}"), 403)
    assert_error(client.put("/v1/models/m/gates", json={"max_forgetting": 0.5}), 403)
    assert client.get(f"/v1/files/{file_id}").status_code == 200  # nothing was deleted
    assert client.get("/v1/models/m").json()["gates"] == default_gates()  # unchanged


def test_keys_are_managed_over_the_api_by_admin_keys(client):
    root = scoped(client, "root", ["admin"])
    created = client.post("/v1/keys", json={"name": "ci", "scopes": ["read"], "expires_in": 3600}, headers=root)
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["object"] == "api_key" and key["scopes"] == ["read"] and key["secret"].startswith("sk-sculpt-")
    assert key["expires_at"] - key["created_at"] in (3599, 3600, 3601) and key["revoked_at"] is None
    ci = {"Authorization": f"Bearer {key['secret']}"}
    assert client.get("/v1/models", headers=ci).status_code == 200
    assert_error(client.get("/v1/keys", headers=ci), 403, code="insufficient_scope")
    assert_error(client.post("/v1/keys", json={"name": "mine", "scopes": ["admin"]}, headers=ci), 403)

    listed = client.get("/v1/keys", headers=root).json()["data"]
    assert [k["name"] for k in listed] == ["root", "ci"] and key["secret"] not in str(listed)
    assert all("secret" not in k for k in listed)
    assert_error(client.post("/v1/keys", json={"name": "ci", "scopes": ["read"]}, headers=root), 409,
                 param="name", code="key_exists")
    assert_error(client.post("/v1/keys", json={"name": "x", "scopes": ["root"]}, headers=root), 422)
    assert_error(client.post("/v1/keys", json={"name": "x", "scopes": []}, headers=root), 422)

    revoked = client.delete(f"/v1/keys/{key['id']}", headers=root)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert_error(client.get("/v1/models", headers=ci), 401)
    again = client.post("/v1/keys", json={"name": "ci", "scopes": ["train"]}, headers=root)  # the name is free again
    assert again.status_code == 201 and again.json()["id"] != key["id"]
    assert [k["name"] for k in client.get("/v1/keys", headers=root).json()["data"]] == ["root", "ci", "ci"]
    for unknown in ("key-999", "key-99999999999999999999", "ci"):
        assert_error(client.delete(f"/v1/keys/{unknown}", headers=root), 404)


def test_a_key_name_is_free_again_once_revoked(client):
    make_key("ci")
    with new_session() as session:
        assert keys.revoke_key(session, "ci")
    second = make_key("ci")
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {second}"}).status_code == 200
