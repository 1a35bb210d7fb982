"""kill -9 of the API while job submissions are in flight, then a restart: every 201 has its job,
a client that retries with its Idempotency-Key gets the same job, and each job runs exactly once."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.core.enums import TERMINAL_STATUSES as TERMINAL
from tests.faults.api_process import ApiProcess
from tests.faults.invariants import assert_lineage_intact
from tests.worker.harness import jsonl, records

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

LINEAGES = ("a", "b", "c")
SUBMITTERS = 4
KILL_AFTER_ACCEPTED = 3


@pytest.fixture
def api(pg_env, tmp_path):
    with ApiProcess(tmp_path / "api.log") as server:
        yield server


def _body(lineage: str, file_id: str, key: str) -> dict:
    return {"model": lineage, "training_file": file_id, "seed": 0,
            "hyperparameters": {"n_epochs": 1, "batch_size": 4},
            "continual": {"task": f"t-{key}", "learning_rate": 3e-3}}


def _burst(url: str, file_id: str, accepted: dict, unanswered: dict, enough: threading.Event) -> None:
    """Each submitter sends jobs until the API stops answering; records 201s and requests left hanging."""
    def submitter(n: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(100):
                key = f"k-{n}-{i}-{uuid.uuid4().hex[:6]}"
                body = _body(LINEAGES[(n + i) % len(LINEAGES)], file_id, key)
                try:
                    response = client.post("/v1/fine_tuning/jobs", json=body, headers={"Idempotency-Key": key})
                except httpx.HTTPError:
                    unanswered[key] = body
                    return
                assert response.status_code == 201, response.text
                accepted[key] = response.json()["id"]
                if len(accepted) >= KILL_AFTER_ACCEPTED:
                    enough.set()

    with ThreadPoolExecutor(SUBMITTERS) as pool:
        list(pool.map(submitter, range(SUBMITTERS)))


def _wait_all_terminal(client: httpx.Client, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = client.get("/v1/fine_tuning/jobs?limit=100").json()["data"]
        if all(j["status"] in TERMINAL for j in jobs):
            return jobs
        time.sleep(1)
    raise AssertionError(f"jobs still running after {timeout}s: {[j['status'] for j in jobs]}")


def test_api_killed_mid_burst_loses_no_accepted_job_and_runs_each_once(api, pg_env, tiny_base, workers):
    with httpx.Client(base_url=api.url, timeout=30) as client:
        for lineage in LINEAGES:
            assert client.post("/v1/models", json={"id": lineage, "base_model": str(tiny_base)}).status_code == 201
        file_id = client.post("/v1/files", data={"purpose": "fine-tune"},
                              files={"file": ("t.jsonl", jsonl(records("t", 12)), "application/jsonl")}).json()["id"]

    accepted: dict[str, str] = {}
    unanswered: dict[str, dict] = {}
    enough = threading.Event()
    burst = threading.Thread(target=_burst, args=(api.url, file_id, accepted, unanswered, enough))
    burst.start()
    assert enough.wait(120), "the burst never got going"
    api.kill()
    burst.join(60)
    assert unanswered, "no request was in flight when the API died"

    api.start()
    with httpx.Client(base_url=api.url, timeout=30) as client:
        for key, job_id in accepted.items():  # every 201 has its row
            assert client.get(f"/v1/fine_tuning/jobs/{job_id}").status_code == 200, key
        for key, body in unanswered.items():  # a retry gets the job if it was committed, else makes it
            retry = client.post("/v1/fine_tuning/jobs", json=body, headers={"Idempotency-Key": key})
            assert retry.status_code in (200, 201), retry.text
            accepted[key] = retry.json()["id"]
        listed = client.get("/v1/fine_tuning/jobs?limit=100").json()["data"]
        assert sorted(j["id"] for j in listed) == sorted(accepted.values())  # one job per request, no more

        workers(1)
        jobs = _wait_all_terminal(client, timeout=600)
        assert {j["status"] for j in jobs} == {"succeeded"}, [j["error"] for j in jobs if j["error"]]
        for job in jobs:
            events = client.get(f"/v1/fine_tuning/jobs/{job['id']}/events?limit=100&type=message").json()["data"]
            assert sum(e["message"].startswith("Attempt") for e in events) == 1, job["id"]

    from fastapi.testclient import TestClient

    from app.main import create_app

    local = TestClient(create_app())
    for lineage in LINEAGES:
        versions = assert_lineage_intact(local, lineage, pg_env.resolved_artifact_root)
        chain = {v["version"]: v["parent_version"] for v in versions}
        ran = sum(j["model"] == lineage for j in jobs)
        assert chain == {1: None, **{n: n - 1 for n in range(2, ran + 2)}}, (lineage, chain)
