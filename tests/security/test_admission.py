"""Overload is refused clearly: a burst of submissions never queues past SCULPT_MAX_QUEUED_JOBS (429),
and a request that finds no free database connection gets a retryable 503."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.api.helpers import PROMPT_RECORDS, jsonl
from tests.faults.api_process import ApiProcess

CAP = 5


@pytest.fixture
def served(pg_env, tmp_path, monkeypatch):
    monkeypatch.setenv("SCULPT_MAX_QUEUED_JOBS", str(CAP))
    with ApiProcess(tmp_path / "api.log") as server:
        yield server


@pytest.mark.postgres
@pytest.mark.redis
def test_a_burst_never_queues_more_than_the_cap(served, base_model_dir):
    with httpx.Client(base_url=served.url, timeout=60) as client:
        for lineage in ("a", "b"):
            client.post("/v1/models", json={"id": lineage, "base_model": str(base_model_dir)}).raise_for_status()
        file_id = client.post("/v1/files", data={"purpose": "fine-tune"},
                              files={"file": ("t.jsonl", jsonl(PROMPT_RECORDS))}).json()["id"]

        def submit(i: int) -> httpx.Response:
            return client.post("/v1/fine_tuning/jobs", json={"model": "ab"[i % 2], "training_file": file_id,
                                                             "suffix": f"t{i}"})

        with ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(submit, range(48)))
        listed = client.get("/v1/fine_tuning/jobs?limit=100").json()["data"]

    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == CAP and statuses.count(429) == len(responses) - CAP, statuses
    refusal = next(r for r in responses if r.status_code == 429)
    assert refusal.json()["error"]["code"] == "queue_full" and int(refusal.headers["Retry-After"]) > 0
    assert "queued" in refusal.json()["error"]["message"]
    assert len(listed) == CAP


def test_no_free_database_connection_is_a_clear_retryable_503(sqlite_env, monkeypatch):
    from fastapi.testclient import TestClient
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    import app.lineages.service as lineages_service
    from app.main import create_app

    def exhausted(_session):
        raise PoolTimeout("QueuePool limit of size 10 overflow 30 reached")

    monkeypatch.setattr(lineages_service, "list_models", exhausted)
    response = TestClient(create_app(), raise_server_exceptions=False).get("/v1/models")
    assert response.status_code == 503 and response.json()["error"]["code"] == "server_busy"
    assert int(response.headers["Retry-After"]) > 0 and "QueuePool" not in response.text
