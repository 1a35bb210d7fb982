"""The small ones of a hostile client: digits that are not ASCII, numbers past the database's integers,
booleans and strings where numbers belong, a race of creates under one Idempotency-Key, and guessed
keys: each a clear 4xx, never a 500, and nothing changed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.core.db.session import new_session
from app.keys import service as keys
from tests.api.helpers import assert_error, create_job, register, upload_ok
from tests.conftest import reset_caches
from tests.dashboard.live import live_server


def test_digits_that_are_not_ascii_name_nothing(client, base_model_dir):
    register(client, "bot", base_model_dir)
    job = create_job(client, "bot", upload_ok(client)).json()
    assert_error(client.get("/v1/models/bot:v%C2%B2"), 404)
    assert_error(client.get("/v1/models/bot:v%D9%A3"), 404)  # Arabic-Indic 3: int() would read it as 3
    events = f"/v1/fine_tuning/jobs/{job['id']}/events"
    assert_error(client.get(f"{events}?after=ftevent-%C2%B2"), 422, param="after")
    assert_error(client.get(f"{events}/stream?after=ftevent-%C2%B2"), 422, param="after")
    assert_error(client.get(f"{events}/stream", headers={"Last-Event-ID": b"ftevent-\xb2"}), 422,
                 param="Last-Event-ID")
    for model in ("bot:v²", "bot:v2147483648", "bot:v99999999999999999999"):
        assert_error(client.post("/v1/chat/completions", json={"model": model, "messages": [
            {"role": "user", "content": "hi"}]}), 404, param="model")


def test_versions_past_the_databases_integers_are_not_found(client, base_model_dir):
    register(client, "bot", base_model_dir)
    for path in ("/v1/models/bot/versions/2147483648", "/v1/models/bot:v2147483648",
                 "/v1/models/bot/evaluations?version=2147483648", "/v1/models/bot/versions/2147483648/content"):
        assert_error(client.get(path), 404)
    assert_error(client.post("/v1/models/bot/versions/2147483648/pin"), 404)
    assert_error(client.delete("/v1/models/bot/versions/99999999999999999999"), 404)


def test_a_range_with_non_ascii_digits_is_ignored():
    from app.versions.archive import parse_range

    assert parse_range("bytes=²-", 10) is None and parse_range("bytes=-²", 10) is None
    assert parse_range("bytes=2-", 10) == (2, 10)


@pytest.mark.parametrize(("path", "method", "field", "value"), [
    ("/v1/models/bot/retention", "put", "keep_last", True),
    ("/v1/models/bot/retention", "put", "keep_last", "3"),
    ("/v1/models/bot/head", "post", "version", True),
    ("/v1/models/bot/head", "post", "version", "1"),
    ("/v1/models/bot/gates", "put", "max_forgetting", True),
    ("/v1/models/bot/gates", "put", "max_forgetting", "0.3"),
])
def test_booleans_and_strings_are_not_numbers(sqlite_client, base_model_dir, path, method, field, value):
    register(sqlite_client, "bot", base_model_dir)
    before = sqlite_client.get("/v1/models/bot").json()
    body = {field: value, **({"reason": "x"} if field == "version" else {})}
    assert_error(getattr(sqlite_client, method)(path, json=body), 422, param=field)
    assert sqlite_client.get("/v1/models/bot").json() == before
    assert sqlite_client.get("/v1/models/bot/retention").json()["keep_last"] is None


def test_concurrent_creates_with_one_idempotency_key_on_sqlite(sqlite_env, base_model_dir):
    with live_server() as url, httpx.Client(base_url=url, timeout=60) as client:
        register(client, "m", base_model_dir)
        file_id = upload_ok(client)

        def create(suffix: str) -> int:
            return client.post("/v1/fine_tuning/jobs", headers={"Idempotency-Key": "one"},
                               json={"model": "m", "training_file": file_id, "suffix": suffix}).status_code

        with ThreadPoolExecutor(12) as pool:
            same = list(pool.map(create, ["same"] * 24))
            different = list(pool.map(create, [f"other{i}" for i in range(12)]))
        assert sorted(set(same)) == [200, 201] and same.count(201) == 1, same
        assert set(different) == {409}, different
        assert len(client.get("/v1/fine_tuning/jobs").json()["data"]) == 1


def test_guessed_keys_are_rate_limited_by_client_address(sqlite_env, monkeypatch):
    from fastapi.testclient import TestClient

    from app.main import create_app

    monkeypatch.setenv("SCULPT_RATE_LIMIT_PER_MINUTE", "20")
    reset_caches()
    with new_session() as session:
        secret = keys.create_key(session, "ops")
    app = create_app()
    client = TestClient(app)
    answers = [client.get("/v1/models", headers={"Authorization": f"Bearer sk-guess-{i}"}).status_code
               for i in range(40)]
    assert answers[:20] == [401] * 20 and set(answers[20:]) == {429}, answers
    limited = client.get("/v1/models", headers={"Authorization": "Bearer sk-guess-x"})
    assert_error(limited, 429)
    assert int(limited.headers["Retry-After"]) >= 1
    assert "invalid API keys" in limited.json()["error"]["message"]
    other = TestClient(app, client=("10.0.0.9", 50000))  # another address is not held back
    assert other.get("/v1/models", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
