"""The worker posts each terminal state it commits: a version recorded (succeeded) and a job that
failed, both signed, both visible on the job. A real worker process on the embedded backend."""

from __future__ import annotations

import pytest

from tests.webhooks.conftest import SECRET
from tests.worker.harness import records, upload, wait_for

pytestmark = pytest.mark.slow


def _submit(client, model: str, file_id: str, url: str) -> str:
    response = client.post("/v1/fine_tuning/jobs", json={
        "model": model, "training_file": file_id, "hyperparameters": {"n_epochs": 1, "batch_size": 4},
        "continual": {"task": f"t-{model}", "learning_rate": 3e-3}, "webhook_url": url})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_the_worker_posts_succeeded_and_failed_jobs(sqlite_env, webhooks_on, tiny_base, base_model_dir,
                                                    receiver, workers):
    from fastapi.testclient import TestClient

    from app.main import create_app

    client = TestClient(create_app())
    client.post("/v1/models", json={"id": "good", "base_model": str(tiny_base)})
    client.post("/v1/models", json={"id": "broken", "base_model": str(base_model_dir)})  # weights unreadable
    file_id = upload(client, records("w"))
    good, broken = _submit(client, "good", file_id, receiver.url), _submit(client, "broken", file_id, receiver.url)
    workers(1)
    ended = {job_id: wait_for(client, job_id, timeout=300)["status"] for job_id in (good, broken)}
    assert ended == {good: "succeeded", broken: "failed"}

    posted = {d.job["id"]: d for d in receiver.wait_for(2)}
    assert set(posted) == {good, broken} and all(d.signed_with(SECRET) for d in posted.values())
    assert posted[good].job["status"] == "succeeded" and posted[good].job["fine_tuned_model"] == "good:v2"
    assert posted[broken].job["error"]["code"] == "model_not_loadable"
    for job_id in (good, broken):
        deliveries = wait_for(client, job_id, until=lambda j: j["webhook"]["deliveries"])["webhook"]["deliveries"]
        assert [(d["attempt"], d["status_code"]) for d in deliveries] == [(1, 200)]
