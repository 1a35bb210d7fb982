"""Deleting a version (the row stays, marked deleted) and a lineage (everything goes), on SQLite and
PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from app.core.db.session import session_scope
from app.core.db.tables import Evaluation, Job, Task
from app.core.storage import get_storage
from tests.api.helpers import assert_error, create_job, register, upload_ok
from tests.versions.conftest import set_head, store_version
from worker.reconciler import finish_deletions


def checkpoint_dir(client, version: int) -> Path:
    return Path(get_storage().uri(f"checkpoints/bot/v{version}"))


def test_a_deleted_version_keeps_its_row_and_history_but_no_checkpoint(lineage):
    client, _ = lineage
    with session_scope() as session:
        # v2 learned t2 (the record shows only tasks some version learned)
        session.add(Task(model_id="bot", name="t2", position=0, version=2, training_file="file-x", eval_uri="/x"))
        session.add(Evaluation(model_id="bot", version=2, task_name="t2", metric="exact_match", score=0.7, n=10))
    client.post("/v1/models/bot/head", json={"version": 2, "reason": "try v2"})
    client.post("/v1/models/bot/head", json={"version": 3, "reason": "back to v3"})
    assert checkpoint_dir(client, 2).is_dir()

    deleted = client.delete("/v1/models/bot/versions/2")
    assert deleted.status_code == 200, deleted.text
    body = deleted.json()
    assert body["deleted"] is True and body["checkpoint_uri"] is None and body["checkpoint_sha256"] is None
    assert isinstance(body["deleted_at"], int) and body["task"] == "t2" and body["job_id"] == "ftjob-2"
    assert not checkpoint_dir(client, 2).exists() and checkpoint_dir(client, 3).is_dir()

    versions = {v["version"]: v for v in client.get("/v1/models/bot/versions").json()["data"]}
    assert versions[2] == body and versions[3]["deleted"] is False and versions[3]["checkpoint_uri"]
    assert client.get("/v1/models/bot:v2").json()["deleted"] is True
    assert client.get("/v1/models/bot").json()["versions"] == 3
    assert client.get("/v1/models/bot/evaluations").json()["matrix"] == [[0.7]]
    history = [(h["from_version"], h["to_version"]) for h in client.get("/v1/models/bot/head/history").json()["data"]]
    assert history == [(None, 1), (3, 2), (2, 3)]
    assert client.delete("/v1/models/bot/versions/2").json() == body  # already deleted: nothing more to do
    assert_error(client.post("/v1/models/bot/head", json={"version": 2, "reason": "x"}), 409,
                 param="version", code="version_deleted")
    assert_error(client.post("/v1/models/bot/versions/2/pin"), 404, code="version_deleted")


def test_the_head_the_base_and_a_version_a_job_trains_from_cannot_be_deleted(lineage):
    client, _ = lineage
    error = assert_error(client.delete("/v1/models/bot/versions/3"), 409, param="version", code="version_is_head")
    assert "head" in error["message"]
    assert_error(client.delete("/v1/models/bot/versions/1"), 409, param="version", code="version_is_base")
    assert_error(client.delete("/v1/models/bot/versions/7"), 404, param="version")
    assert_error(client.delete("/v1/models/bot/versions/0"), 422, param="version")

    job = create_job(client, "bot", upload_ok(client)).json()
    with session_scope() as session:  # as a worker that took it while v2 was the head
        row = session.query(Job).filter_by(id=job["id"]).one()
        row.status, row.base_version = "running", 2
    error = assert_error(client.delete("/v1/models/bot/versions/2"), 409, param="version", code="version_in_use")
    assert job["id"] in error["message"]
    assert checkpoint_dir(client, 2).is_dir() and client.get("/v1/models/bot/versions/2").json()["deleted"] is False
    with session_scope() as session:
        session.query(Job).filter_by(id=job["id"]).one().status = "succeeded"
    assert client.delete("/v1/models/bot/versions/2").json()["deleted"] is True


def test_deleting_a_lineage_with_queued_jobs_needs_force_and_cancels_them(lineage, base_model_dir):
    client, _ = lineage
    job = create_job(client, "bot", upload_ok(client)).json()
    error = assert_error(client.delete("/v1/models/bot"), 409, param="force", code="lineage_busy")
    assert job["id"] in error["message"]
    assert client.get("/v1/models/bot").status_code == 200 and checkpoint_dir(client, 2).is_dir()

    deleted = client.delete("/v1/models/bot", params={"force": "true"})
    assert deleted.status_code == 200, deleted.text
    body = deleted.json()
    assert (body["id"], body["object"], body["deleted"], body["completed"]) == ("bot", "model", True, True)
    assert body["bytes_freed"] > 0
    assert not checkpoint_dir(client, 2).parent.exists()
    assert_error(client.get("/v1/models/bot"), 404, code="model_not_found")
    assert_error(client.get(f"/v1/fine_tuning/jobs/{job['id']}"), 404)
    assert client.get("/v1/models").json()["data"] == []
    register(client, "bot", base_model_dir)  # the id is free again
    assert client.get("/v1/models/bot").json()["versions"] == 1


def test_a_lineage_whose_job_runs_goes_from_the_api_at_once_and_from_disk_when_the_job_stops(lineage):
    client, _ = lineage
    job = create_job(client, "bot", upload_ok(client)).json()
    with session_scope() as session:
        session.query(Job).filter_by(id=job["id"]).one().status = "running"
    body = client.delete("/v1/models/bot", params={"force": "true"}).json()
    assert body["completed"] is False and body["bytes_freed"] == 0
    assert_error(client.get("/v1/models/bot"), 404)
    assert_error(client.get("/v1/models/bot/versions/2/content"), 404)
    assert client.get(f"/v1/fine_tuning/jobs/{job['id']}").json()["status"] == "running"
    assert client.get("/v1/models").json()["data"] == []
    finish_deletions()
    assert checkpoint_dir(client, 2).is_dir()  # a worker may still be saving there

    with session_scope() as session:  # the worker saw cancel_requested and stopped
        row = session.query(Job).filter_by(id=job["id"]).one()
        assert row.cancel_requested
        row.status = "cancelled"
    finish_deletions()
    assert not checkpoint_dir(client, 2).parent.exists()
    assert_error(client.get(f"/v1/fine_tuning/jobs/{job['id']}"), 404)


def test_retention_keeps_the_newest_the_head_and_pinned_versions(client, base_model_dir):
    register(client, "bot", base_model_dir)
    for version in range(2, 7):
        store_version("bot", version)
    set_head("bot", 5)
    assert client.post("/v1/models/bot/versions/3/pin").json()["pinned"] is True
    assert client.get("/v1/models/bot/retention").json() == {"object": "model.retention", "model": "bot",
                                                             "keep_last": None, "pinned": [3]}
    nothing = client.post("/v1/models/bot/retention/sweep").json()
    assert nothing["deleted"] == [] and nothing["bytes_freed"] == 0  # no policy: everything stays

    assert_error(client.put("/v1/models/bot/retention", json={"keep_last": -1}), 422, param="keep_last")
    assert_error(client.put("/v1/models/bot/retention", json={}), 422, param="keep_last")
    policy = client.put("/v1/models/bot/retention", json={"keep_last": 1}).json()
    assert policy["keep_last"] == 1 and policy["pinned"] == [3]

    sizes = {v: sum(p.stat().st_size for p in checkpoint_dir(client, v).rglob("*") if p.is_file())
             for v in range(2, 7)}
    plan = client.post("/v1/models/bot/retention/sweep", params={"dry_run": "true"}).json()
    assert plan["dry_run"] is True and [d["version"] for d in plan["deleted"]] == [4, 2]
    assert plan["bytes_freed"] == sizes[4] + sizes[2] and all(checkpoint_dir(client, v).is_dir() for v in sizes)

    done = client.post("/v1/models/bot/retention/sweep").json()
    assert done["dry_run"] is False and done["deleted"] == plan["deleted"]
    assert done["bytes_freed"] == plan["bytes_freed"]
    state = {v["version"]: v["deleted"] for v in client.get("/v1/models/bot/versions").json()["data"]}
    assert state == {1: False, 2: True, 3: False, 4: True, 5: False, 6: False}
    assert {v for v in sizes if checkpoint_dir(client, v).exists()} == {3, 5, 6}

    client.post("/v1/models/bot/versions/3/unpin")
    store_version("bot", 7)  # a new version arrives; the workers' sweep applies the policy
    assert sorted(finish_deletions()) == [3, 6]
    state = {v["version"]: v["deleted"] for v in client.get("/v1/models/bot/versions").json()["data"]}
    assert [v for v, gone in state.items() if not gone] == [1, 5, 7]
