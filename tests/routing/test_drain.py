"""Draining a worker (SIGTERM, Celery's warm shutdown): it finishes the job it is running, starts
no other, and the lineage's next job goes to another worker."""

from __future__ import annotations

import signal

import pytest

from tests.routing.test_queues import _attempts, _worker_pids
from tests.worker.harness import records, submit, upload, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_a_drained_worker_finishes_its_job_and_the_lineage_continues_elsewhere(pg_client, tiny_base, workers):
    client = pg_client
    client.post("/v1/models", json={"id": "d", "base_model": str(tiny_base)})
    # Held a few seconds at the start of training, so the drain always catches the job running.
    [leaving] = workers(1, SCULPT_FAULT_PAUSE_AT="training", SCULPT_FAULT_PAUSE_SECONDS="3")
    first = submit(client, "d", upload(client, records("nu", 300)), "nu")
    second = submit(client, "d", upload(client, records("xi", 12)), "xi")
    wait_for(client, first, until=lambda job: (job.get("progress") or {}).get("phase") == "training")

    leaving.send_signal(signal.SIGTERM)
    assert leaving.wait(timeout=300) == 0
    done = client.get(f"/v1/fine_tuning/jobs/{first}").json()
    assert done["status"] == "succeeded" and done["fine_tuned_model"] == "d:v2", done
    waiting = client.get(f"/v1/fine_tuning/jobs/{second}").json()
    assert waiting["status"] == "queued" and _attempts(client, second) == []

    staying = workers(1)[-1]  # workers() returns every worker started so far
    job = wait_for(client, second, timeout=300)
    assert job["status"] == "succeeded" and job["fine_tuned_model"] == "d:v3", job
    assert _worker_pids(client, first) == [leaving.pid] and _worker_pids(client, second) == [staying.pid]
