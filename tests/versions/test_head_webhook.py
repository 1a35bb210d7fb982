"""A lineage's webhook gets a signed 'model.head_changed' event for every promotion or rollback, and
each attempt shows on the head history."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import assert_error, register
from tests.versions.conftest import store_version
from tests.webhooks.conftest import SECRET, receiver, webhooks_on  # noqa: F401 - fixtures
from tests.webhooks.receiver import settle_head_changes
from tests.worker.conftest import tiny_base, workers  # noqa: F401 - fixtures


@pytest.fixture
def hooked(sqlite_env, webhooks_on, base_model_dir):  # noqa: F811
    from app.main import create_app

    client = TestClient(create_app())
    register(client, "bot", base_model_dir)
    store_version("bot", 2)
    return client


def test_a_head_change_is_posted_signed_and_recorded(hooked, receiver):  # noqa: F811
    client = hooked
    assert_error(client.put("/v1/models/bot/webhook", json={"webhook_url": "http://evil.example.com/x"}), 422,
                 param="webhook_url", code="invalid_webhook_url")
    assert client.get("/v1/models/bot/webhook").json()["webhook_url"] is None
    set_ = client.put("/v1/models/bot/webhook", json={"webhook_url": receiver.url})
    assert set_.status_code == 200 and set_.json()["webhook_url"] == receiver.url

    assert client.post("/v1/models/bot/head", json={"version": 2, "reason": "ship it"}).status_code == 200
    client.post("/v1/models/bot/head", json={"version": 1, "reason": "roll back"})
    deliveries = receiver.wait_for(2)
    settle_head_changes()
    assert len(deliveries) == 2 and all(d.signed_with(SECRET) for d in deliveries)
    events = [json.loads(d.body) for d in deliveries]
    assert [e["type"] for e in events] == ["model.head_changed"] * 2
    assert [(e["data"]["from_version"], e["data"]["to_version"], e["data"]["reason"]) for e in events] == [
        (1, 2, "ship it"), (2, 1, "roll back")]
    history = client.get("/v1/models/bot/head/history").json()["data"]
    assert [h["id"] for h in history[1:]] == [e["id"] for e in events]
    assert history[0]["webhook_deliveries"] is None  # registered before the lineage had a webhook
    assert [d["status_code"] for h in history[1:] for d in h["webhook_deliveries"]] == [200, 200]


def test_a_failing_receiver_is_retried_and_a_lost_delivery_resumed(hooked, receiver):  # noqa: F811
    from app.core.db.session import session_scope
    from app.core.db.tables import HeadChange
    from app.webhooks.delivery import deliver_head_changes

    client = hooked
    receiver.statuses = [500]
    client.put("/v1/models/bot/webhook", json={"webhook_url": receiver.url})
    client.post("/v1/models/bot/head", json={"version": 2, "reason": "ship it"})
    receiver.wait_for(2)
    settle_head_changes()
    change = client.get("/v1/models/bot/head/history").json()["data"][-1]
    assert [d["status_code"] for d in change["webhook_deliveries"]] == [500, 200]

    with session_scope() as session:  # a head change whose process died before delivering it
        session.add(HeadChange(model_id="bot", from_version=2, to_version=1, reason="by a worker", actor="worker"))
    assert len(deliver_head_changes()) == 1  # what the reconciler runs
    assert json.loads(receiver.wait_for(3)[2].body)["data"]["reason"] == "by a worker"
    assert deliver_head_changes() == []  # each change is delivered once


def test_a_job_that_promotes_its_version_posts_the_head_change(sqlite_env, webhooks_on, tiny_base,  # noqa: F811
                                                               workers, receiver):  # noqa: F811
    from app.main import create_app
    from tests.worker.harness import records, submit, upload, wait_for

    client = TestClient(create_app())
    assert client.post("/v1/models", json={"id": "bot", "base_model": str(tiny_base)}).status_code == 201
    client.put("/v1/models/bot/webhook", json={"webhook_url": receiver.url})
    workers(1)
    job = wait_for(client, submit(client, "bot", upload(client, records("alpha")), "alpha"), timeout=900)
    assert job["status"] == "succeeded" and job["fine_tuned_model"] == "bot:v2"
    event = json.loads(receiver.wait_for(1)[0].body)
    assert event["type"] == "model.head_changed" and receiver.deliveries[0].signed_with(SECRET)
    assert (event["data"]["from_version"], event["data"]["to_version"], event["data"]["job_id"]) == (1, 2, job["id"])
