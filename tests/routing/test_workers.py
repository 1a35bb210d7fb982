"""Workers announce themselves with their queues: GET /v1/workers and /metrics list the live ones, and a
job sent to a queue no live worker serves says so at once, as does every later job of its lineage."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.worker.harness import records, stop_worker, submit, upload


def _live(client) -> list[dict]:
    response = client.get("/v1/workers")
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _until(check, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.3)
    raise AssertionError("timed out")


@pytest.mark.postgres
@pytest.mark.redis
def test_live_workers_are_listed_and_a_job_no_worker_can_take_says_so(pg_client, tiny_base, workers):
    client = pg_client
    assert client.post("/v1/models", json={"id": "m", "base_model": str(tiny_base)}).status_code == 201
    [gpu] = workers(1, queues="gpu")
    [worker] = _until(lambda: _live(client))
    assert worker["object"] == "worker" and worker["queues"] == ["gpu"] and worker["id"].startswith("w0@")
    metrics = client.get("/metrics").text
    assert 'sculpt_live_workers{queue="gpu"} 1.0' in metrics

    train = upload(client, records("alpha", 6))
    stranded = submit(client, "m", train, "a", queue="tpu")
    behind = submit(client, "m", train, "b", queue="gpu")
    job = client.get(f"/v1/fine_tuning/jobs/{stranded}").json()
    assert job["status"] == "queued" and job["progress"]["waiting_for"] == "queue tpu has no live worker"
    events = client.get(f"/v1/fine_tuning/jobs/{stranded}/events").json()["data"]
    assert any(e["level"] == "warn" and "queue tpu has no live worker" in e["message"] for e in events)
    later = client.get(f"/v1/fine_tuning/jobs/{behind}").json()["progress"]["waiting_for"]
    assert later == f"job {stranded} ahead of it in the lineage: queue tpu has no live worker"
    assert 'sculpt_live_workers{queue="tpu"} 0.0' in client.get("/metrics").text

    stop_worker(gpu)
    assert _live(client) == []  # it withdrew at shutdown


def test_a_worker_not_heard_from_is_not_live(client):
    from app.workers.service import announce

    announce("w9@host", ["default"])
    assert [w["id"] for w in _live(client)] == ["w9@host"]
    from sqlalchemy import update

    from app.core.db.session import session_scope
    from app.core.db.tables import Worker

    with session_scope() as session:  # as a killed worker's row looks after a while
        session.execute(update(Worker).values(seen_at=datetime.now(UTC) - timedelta(hours=1)))
    assert _live(client) == []


def test_queued_jobs_keep_what_they_wait_for_up_to_date(client, base_model_dir):
    from app.workers.service import announce
    from worker.presence import refresh_waiting

    assert client.post("/v1/models", json={"id": "m", "base_model": str(base_model_dir)}).status_code == 201
    train = upload(client, records("alpha", 6))
    job = submit(client, "m", train, "a", queue="gpu")
    assert client.get(f"/v1/fine_tuning/jobs/{job}").json()["progress"]["waiting_for"] == \
        "queue gpu has no live worker"

    announce("a@host", ["gpu"])
    announce("b@host", ["default"])
    assert refresh_waiting("b@host") == 0  # one worker writes: the first by name
    assert refresh_waiting("a@host") == 1
    assert client.get(f"/v1/fine_tuning/jobs/{job}").json()["progress"]["waiting_for"] is None
    events = client.get(f"/v1/fine_tuning/jobs/{job}/events").json()["data"]
    assert events[0]["message"] == "A live worker can now take the job"
    assert refresh_waiting("a@host") == 0  # nothing changed, nothing written
