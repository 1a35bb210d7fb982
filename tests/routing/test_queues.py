"""Workers take jobs only from the queues they subscribe to (``--queues``), and a lineage whose
jobs ask for different queues still runs one job at a time, in order, moving between pools."""

from __future__ import annotations

from itertools import pairwise

import pytest

from tests.worker.harness import records, submit, upload, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _attempts(client, job_id: str) -> list[dict]:
    events = client.get(f"/v1/fine_tuning/jobs/{job_id}/events?limit=100&type=message").json()["data"]
    return [e for e in events if e["message"].startswith("Attempt")]


def _worker_pids(client, job_id: str) -> list[int]:
    """The process id of each worker that started the job (its identity is host:pid:nonce)."""
    return [int(e["data"]["worker"].split(":")[1]) for e in _attempts(client, job_id)]


def test_jobs_run_only_on_their_queues_workers_and_a_lineage_stays_one_at_a_time(
        pg_client, tiny_base, workers, tmp_path):
    client = pg_client
    for lineage in ("mixed", "stranded"):
        assert client.post("/v1/models", json={"id": lineage, "base_model": str(tiny_base)}).status_code == 201
    train = upload(client, records("mu", 12))
    [general] = workers(1)
    big = workers(1, queues="gpu-80g")[-1]
    queues = ["gpu-80g", "default", "gpu-80g"]
    job_ids = [submit(client, "mixed", train, f"t{i}", queue=queue) for i, queue in enumerate(queues)]
    nobody = submit(client, "stranded", train, "t", queue="tpu")  # no worker serves this queue

    jobs = [wait_for(client, job_id, timeout=400) for job_id in job_ids]
    assert [j["status"] for j in jobs] == ["succeeded"] * 3, jobs
    assert [_worker_pids(client, j) for j in job_ids] == [[big.pid], [general.pid], [big.pid]]
    assert [j["fine_tuned_model"] for j in jobs] == ["mixed:v2", "mixed:v3", "mixed:v4"]
    versions = client.get("/v1/models/mixed/versions").json()["data"]
    assert {v["version"]: v["parent_version"] for v in versions} == {1: None, 2: 1, 3: 2, 4: 3}
    for earlier, later in pairwise(jobs):
        assert earlier["finished_at"] <= _attempts(client, later["id"])[0]["created_at"]
    # The worker that finished a job handed the lineage's next one to the other pool at once.
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("worker-*.log"))
    assert f"lineage mixed continues with job {job_ids[1]} on queue default" in logs

    stranded = client.get(f"/v1/fine_tuning/jobs/{nobody}").json()
    assert stranded["status"] == "queued" and _attempts(client, nobody) == []
