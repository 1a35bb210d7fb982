"""Webhooks for pipelines: only to allowed hosts, signed, retried, every attempt visible on the job,
and never able to fail the job. Received by a real HTTP server."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import assert_error, create_job, register, upload_ok
from tests.webhooks.conftest import SECRET
from tests.webhooks.receiver import settled_deliveries


@pytest.fixture
def client(sqlite_env, webhooks_on) -> TestClient:
    from app.main import create_app

    return TestClient(create_app())


@pytest.fixture
def queued_job(client, base_model_dir):
    """Create a job (no worker runs here, so it stays queued) with the given webhook_url."""
    register(client, "m", base_model_dir)
    file_id = upload_ok(client)

    def create(url: str) -> dict:
        response = create_job(client, "m", file_id, webhook_url=url)
        assert response.status_code == 201, response.text
        return response.json()

    return create


@pytest.mark.parametrize(("url", "why"), [
    ("http://evil.example.com/hook", "not one the operator allows"),
    ("http://127.0.0.1.evil.example.com/hook", "not one the operator allows"),
    ("ftp://127.0.0.1/hook", "http"),
    ("http://user:pw@127.0.0.1/hook", "credentials"),
    ("http://[::1/hook", "not a valid URL"),
    ("file:///etc/passwd", "http"),
])
def test_a_webhook_outside_the_allow_list_is_refused(client, base_model_dir, url, why):
    register(client, "m", base_model_dir)
    error = assert_error(create_job(client, "m", upload_ok(client), webhook_url=url), 422,
                         param="webhook_url", code="invalid_webhook_url")
    assert why in error["message"]
    assert client.get("/v1/fine_tuning/jobs").json()["data"] == []


def test_webhooks_are_refused_when_the_operator_allows_no_host(sqlite_client, base_model_dir):
    register(sqlite_client, "m", base_model_dir)
    error = assert_error(create_job(sqlite_client, "m", upload_ok(sqlite_client),
                                    webhook_url="http://127.0.0.1:9/hook"), 422, param="webhook_url")
    assert "SCULPT_WEBHOOK_ALLOWED_HOSTS" in error["message"]


def test_a_job_cancelled_while_queued_is_posted_signed_to_its_webhook(client, queued_job, receiver):
    job = queued_job(receiver.url)
    assert job["webhook"] == {"url": receiver.url, "deliveries": []}

    assert client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel").json()["status"] == "cancelled"
    [delivery] = receiver.wait_for(1)
    settled_deliveries(job["id"])
    assert delivery.signed_with(SECRET)
    assert not delivery.signed_with("another-secret")
    assert delivery.headers["Content-Type"] == "application/json"
    posted = delivery.job
    assert posted["id"] == job["id"] and posted["status"] == "cancelled" and posted["finished_at"]

    shown = client.get(f"/v1/fine_tuning/jobs/{job['id']}").json()
    assert {k: v for k, v in shown.items() if k != "webhook"} == {k: v for k, v in posted.items() if k != "webhook"}
    [attempt] = shown["webhook"]["deliveries"]
    assert attempt["attempt"] == 1 and attempt["status_code"] == 200 and attempt["at"] >= job["created_at"]


def test_a_failing_receiver_gets_retries_with_growing_delays(client, queued_job, receiver):
    receiver.statuses = [500, 503]  # then 200
    job = queued_job(receiver.url)
    client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel")
    arrivals = [d.arrived for d in receiver.wait_for(3)]
    settled_deliveries(job["id"])
    assert len(arrivals) == 3
    assert arrivals[1] - arrivals[0] >= 0.2 and arrivals[2] - arrivals[1] >= 0.4  # backoff 0.2 s, doubling
    deliveries = client.get(f"/v1/fine_tuning/jobs/{job['id']}").json()["webhook"]["deliveries"]
    assert [(d["attempt"], d["status_code"]) for d in deliveries] == [(1, 500), (2, 503), (3, 200)]


def test_an_unreachable_receiver_is_recorded_and_the_job_stands(client, queued_job, monkeypatch):
    from tests.conftest import reset_caches
    from tests.faults.services import free_port

    port = free_port()  # nothing listens there
    monkeypatch.setenv("SCULPT_WEBHOOK_ALLOWED_HOSTS", f"127.0.0.1:{port}")
    reset_caches()
    job = queued_job(f"http://127.0.0.1:{port}/hook")
    assert client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel").status_code == 200
    settled_deliveries(job["id"])
    shown = client.get(f"/v1/fine_tuning/jobs/{job['id']}").json()
    assert shown["status"] == "cancelled"
    deliveries = shown["webhook"]["deliveries"]
    assert [d["attempt"] for d in deliveries] == [1, 2, 3]
    assert all(d["status_code"] is None and "ConnectError" in d["error"] for d in deliveries)


def test_a_host_removed_from_the_allow_list_is_not_posted_to(client, queued_job, receiver, monkeypatch):
    from app.core.settings import get_settings

    job = queued_job(receiver.url)
    monkeypatch.setenv("SCULPT_WEBHOOK_ALLOWED_HOSTS", "hooks.example.com")
    get_settings.cache_clear()
    client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel")
    settled_deliveries(job["id"])
    [attempt] = client.get(f"/v1/fine_tuning/jobs/{job['id']}").json()["webhook"]["deliveries"]
    assert "not sent" in attempt["error"] and receiver.deliveries == []


def _crash_mid_delivery(job_id: str, claimed_until) -> None:
    """What a worker killed between two attempts leaves: the job ended, one failed attempt on
    record, the delivery still pending under the dead worker's claim."""
    from sqlalchemy import update

    from app.core.db.session import session_scope
    from app.core.db.tables import Job, utcnow

    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(
            status="failed", finished_at=utcnow(), webhook_pending=True, webhook_claimed_until=claimed_until,
            webhook_deliveries=[{"attempt": 1, "at": 1, "status_code": 500}]))


def test_a_delivery_cut_short_by_a_crash_is_resumed_once_its_claim_runs_out(client, queued_job, receiver):
    from datetime import timedelta

    from app.core.db.tables import utcnow
    from worker.reconciler import resume_webhooks

    job = queued_job(receiver.url)
    _crash_mid_delivery(job["id"], claimed_until=utcnow() + timedelta(minutes=5))
    assert resume_webhooks() == []  # the dead worker's claim still stands
    _crash_mid_delivery(job["id"], claimed_until=utcnow() - timedelta(seconds=1))
    assert resume_webhooks() == [job["id"]]
    [delivery] = receiver.wait_for(1)
    assert delivery.job["status"] == "failed" and delivery.signed_with(SECRET)

    def delivered():
        return [(d["attempt"], d["status_code"])
                for d in client.get(f"/v1/fine_tuning/jobs/{job['id']}").json()["webhook"]["deliveries"]]

    deadline = time.monotonic() + 10
    while delivered() != [(1, 500), (2, 200)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert delivered() == [(1, 500), (2, 200)]  # numbered on from the attempt made before the crash
    assert resume_webhooks() == []  # over: never sent again


def test_two_processes_delivering_the_same_job_post_it_once(client, queued_job, receiver):
    import threading

    from app.webhooks.delivery import deliver_job_webhook

    job = queued_job(receiver.url)
    _crash_mid_delivery(job["id"], claimed_until=None)
    outcomes = []
    racers = [threading.Thread(target=lambda: outcomes.append(deliver_job_webhook(job["id"]))) for _ in range(4)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert sorted(outcomes) == [False, False, False, True]
    assert len(receiver.deliveries) == 1
