"""A burst of job submissions from many clients at once against a real API process on PostgreSQL:
the queue never grows past SCULPT_MAX_QUEUED_JOBS, and every refusal is a clear 429."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.api.helpers import PROMPT_RECORDS, jsonl
from tests.faults.api_process import ApiProcess

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

CAP = 5


@pytest.fixture
def served(pg_env, tmp_path, monkeypatch):
    monkeypatch.setenv("SCULPT_MAX_QUEUED_JOBS", str(CAP))
    server = ApiProcess(tmp_path / "api.log")
    server.start()
    yield server
    server.stop()


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
