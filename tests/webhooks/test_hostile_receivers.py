"""A receiver that answers slowly, never, or with an endless body: it holds neither a request, its
database session, nor the delivery beyond its deadline, and is posted to at most ATTEMPTS times."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text, update

from tests.api.helpers import create_job, register, upload_ok
from tests.conftest import reset_caches
from tests.dashboard.live import live_server
from tests.webhooks.hostile import HostileReceiver
from tests.webhooks.receiver import settled_deliveries

SETTLE_SECONDS = 30  # the most a test waits for a receiver
ANSWER_SECONDS = 10  # the most a request may take here; a request that waits for a receiver takes longer


@pytest.fixture
def hostile(monkeypatch):
    started: list[HostileReceiver] = []

    def start(mode: str, attempts: int = 2, timeout: float = 1.0) -> HostileReceiver:
        receiver = HostileReceiver(mode).start()
        started.append(receiver)
        monkeypatch.setenv("SCULPT_WEBHOOK_ALLOWED_HOSTS", f"127.0.0.1:{receiver.port}")
        monkeypatch.setenv("SCULPT_WEBHOOK_SECRET", "whsec-hostile")
        monkeypatch.setenv("SCULPT_WEBHOOK_ATTEMPTS", str(attempts))
        monkeypatch.setenv("SCULPT_WEBHOOK_BACKOFF_SECONDS", "0.1")
        monkeypatch.setenv("SCULPT_WEBHOOK_TIMEOUT_SECONDS", str(timeout))
        reset_caches()
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


def _queued_jobs(client: httpx.Client, base_model_dir, url: str, count: int) -> list[str]:
    register(client, "m", base_model_dir)
    file_id = upload_ok(client)
    ids = []
    for index in range(count):
        response = create_job(client, "m", file_id, webhook_url=url, suffix=f"s{index}",
                              continual={"task": f"t{index}"})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


@pytest.mark.postgres
def test_cancels_answer_and_hold_no_transaction_while_the_receiver_hangs(pg_env, hostile, base_model_dir):
    receiver = hostile("hold")
    with live_server() as url, httpx.Client(base_url=url, timeout=ANSWER_SECONDS) as client:
        jobs = _queued_jobs(client, base_model_dir, receiver.url, 3)
        # One keep-alive connection: each request after the first waits behind whatever the one before left.
        assert [client.post(f"/v1/fine_tuning/jobs/{j}/cancel").status_code for j in jobs] == [200, 200, 200]
        deadline = time.monotonic() + SETTLE_SECONDS
        while receiver.posts < len(jobs) and time.monotonic() < deadline:  # every delivery waits on the receiver
            time.sleep(0.05)
        assert receiver.posts == len(jobs) and not receiver.release.is_set()
        assert client.get("/v1/fine_tuning/jobs").status_code == 200
        assert _open_transactions() == []
        receiver.release.set()
        assert all(settled_deliveries(job_id) for job_id in jobs)


def _open_transactions() -> list[str]:
    """The last statement of each PostgreSQL session of this database that holds a transaction open."""
    from app.core.db.session import get_engine

    with get_engine().connect() as connection:
        return list(connection.execute(text(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'idle in transaction' AND pid <> pg_backend_pid()")).scalars())


def test_a_receiver_dripping_its_headers_is_cut_at_each_attempts_deadline(sqlite_env, hostile, base_model_dir):
    receiver = hostile("drip_headers", attempts=2, timeout=0.5)
    with live_server() as url, httpx.Client(base_url=url, timeout=ANSWER_SECONDS) as client:
        [job_id] = _queued_jobs(client, base_model_dir, receiver.url, 1)
        assert client.post(f"/v1/fine_tuning/jobs/{job_id}/cancel").status_code == 200
    deliveries = settled_deliveries(job_id)
    assert [d["attempt"] for d in deliveries] == [1, 2]
    assert all("within 0.5 s" in d["error"] and d.get("status_code") is None for d in deliveries), deliveries
    assert receiver.posts == 2


def test_an_endless_body_is_never_read(sqlite_env, hostile, base_model_dir):
    receiver = hostile("drip_body", attempts=2, timeout=2.0)
    with live_server() as url, httpx.Client(base_url=url, timeout=ANSWER_SECONDS) as client:
        [job_id] = _queued_jobs(client, base_model_dir, receiver.url, 1)
        assert client.post(f"/v1/fine_tuning/jobs/{job_id}/cancel").status_code == 200
    deliveries = settled_deliveries(job_id)
    assert [(d["attempt"], d["status_code"]) for d in deliveries] == [(1, 200)], deliveries
    assert receiver.posts == 1


def test_a_lapsed_claim_never_sends_more_than_attempts_nor_numbers_twice(sqlite_env, hostile, base_model_dir):
    from app.core.db.session import session_scope
    from app.core.db.tables import Job, utcnow
    from worker.reconciler import resume_webhooks

    receiver = hostile("hold", attempts=3, timeout=20)
    with live_server() as url, httpx.Client(base_url=url, timeout=ANSWER_SECONDS) as client:
        [job_id] = _queued_jobs(client, base_model_dir, receiver.url, 1)
        # The API's delivery: its first POST hangs.
        assert client.post(f"/v1/fine_tuning/jobs/{job_id}/cancel").status_code == 200
    assert receiver.arrived.wait(SETTLE_SECONDS)
    receiver.arrived.clear()
    with session_scope() as session:  # the claim lapses while that POST still runs (a stalled process)
        session.execute(update(Job).where(Job.id == job_id).values(
            webhook_claimed_until=utcnow() - timedelta(seconds=1)))
    assert resume_webhooks() == [job_id]  # a worker's reconciler takes the delivery over
    assert receiver.arrived.wait(SETTLE_SECONDS)
    receiver.release.set()  # every POST now fails with a 500
    deliveries = settled_deliveries(job_id)
    time.sleep(1.0)  # room for a delivery that wrongly went on to post again (it would be counted below)
    assert sorted(d["attempt"] for d in deliveries) == [1, 2, 3]
    assert receiver.posts == 3


@pytest.mark.postgres
def test_a_head_move_holds_no_transaction_while_the_lineage_receiver_hangs(pg_env, hostile, base_model_dir):
    from tests.versions.conftest import store_version

    receiver = hostile("hold")
    with live_server() as url, httpx.Client(base_url=url, timeout=ANSWER_SECONDS) as client:
        register(client, "bot", base_model_dir)
        store_version("bot", 2)
        assert client.put("/v1/models/bot/webhook", json={"webhook_url": receiver.url}).status_code == 200
        assert client.post("/v1/models/bot/head", json={"version": 2, "reason": "ship"}).status_code == 200
        assert receiver.arrived.wait(SETTLE_SECONDS) and not receiver.release.is_set()
        assert client.post("/v1/models/bot/head", json={"version": 1, "reason": "back"}).status_code == 200
        assert client.get("/v1/models/bot").json()["head"] == 1
        assert _open_transactions() == []
    receiver.release.set()
