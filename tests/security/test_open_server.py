"""An open server (loopback, no key) is out of reach of web pages: a page's cross-origin posts change
nothing and a DNS-rebinding page's Host is refused; a client that is not a browser, or sends a key, is
served. Revoking the last key locks the server instead of opening it again."""

from __future__ import annotations

from app.core.db.session import new_session
from app.keys import service as keys
from tests.api.helpers import assert_error, create_job, jsonl, register, upload_ok
from tests.worker.harness import records

EVIL = {"Origin": "http://evil.example"}


def _upload(client, **headers):
    return client.post("/v1/files", data={"purpose": "fine-tune"}, headers=headers,
                       files={"file": ("x.jsonl", jsonl(records("alpha")), "application/jsonl")})


def test_a_foreign_page_changes_nothing(sqlite_client, base_model_dir):
    client = sqlite_client
    register(client, "m", base_model_dir)
    job = create_job(client, "m", upload_ok(client)).json()
    assert_error(_upload(client, **EVIL), 403, param="Origin", code="foreign_origin")
    assert_error(_upload(client, Origin="null"), 403, param="Origin", code="foreign_origin")  # a sandboxed page
    assert_error(client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel", headers=EVIL), 403, code="foreign_origin")
    assert_error(client.post("/v1/models/m/versions/1/pin", headers=EVIL), 403, code="foreign_origin")
    assert len(client.get("/v1/files").json()["data"]) == 1
    assert client.get(f"/v1/fine_tuning/jobs/{job['id']}").json()["status"] == "queued"
    assert client.get("/v1/models/m/versions/1").json()["pinned"] is False
    # Its own pages, and clients that are not browsers (no Origin), are served.
    assert _upload(client, Origin="http://testserver").status_code == 201
    assert client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel").status_code == 200


def test_a_rebinding_page_is_refused_by_host(sqlite_client):
    error = assert_error(sqlite_client.get("/v1/models", headers={"Host": "evil.example:8000"}), 403,
                         param="Host", code="foreign_host")
    assert "evil.example:8000" in error["message"]
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "testserver"):
        assert sqlite_client.get("/v1/models", headers={"Host": host}).status_code == 200, host


def test_a_key_authorises_any_host_and_origin(sqlite_client):
    with new_session() as session:
        secret = keys.create_key(session, "ops")
    headers = {"Authorization": f"Bearer {secret}", "Host": "sculpt.internal", **EVIL}
    assert _upload(sqlite_client, **headers).status_code == 201


def test_revoking_the_last_key_of_an_embedded_server_locks_it(sqlite_client):
    with new_session() as session:
        keys.create_key(session, "ops")
        keys.revoke_key(session, "ops")
    assert_error(sqlite_client.get("/v1/models"), 401, code="invalid_api_key")
    assert_error(_upload(sqlite_client), 401)
    assert "sculpt keys create" in assert_error(sqlite_client.get("/readyz"), 503, param="auth")["message"]
    with new_session() as session:
        secret = keys.create_key(session, "ops-2")
    assert sqlite_client.get("/v1/models", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
