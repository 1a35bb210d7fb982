"""Deleting training data a lineage learned from (?force=true): its tasks keep their scores but are no
longer evaluated or replayed, and its held-out split goes with it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from app.core.db.session import session_scope
from app.core.db.tables import Evaluation, Job, JobEvent, Task
from app.core.storage import file_key, get_storage
from tests.api.helpers import assert_error, create_job, upload_ok


def learned(file_id: str, name: str, version: int, position: int) -> Path:
    """Record that ``bot`` learned task ``name`` from ``file_id`` as v``version``, with its held-out split."""
    split = json.dumps({"prompt": f"{name}?", "completion": " x"}).encode() + b"\n"
    storage = get_storage()
    key = file_key(hashlib.sha256(split).hexdigest())
    tmp = storage.scratch_file("files")
    tmp.write_bytes(split)
    storage.store_file(tmp, key)
    with session_scope() as session:
        session.add(Task(model_id="bot", name=name, position=position, version=version, training_file=file_id,
                         eval_uri=storage.uri(key)))
        session.add(Evaluation(model_id="bot", version=version, task_name=name, metric="exact_match", score=0.5,
                               n=1))
    return Path(storage.uri(key))


def test_force_deletes_data_a_task_learned_and_marks_it_unevaluable(lineage):
    client, _ = lineage
    alpha, beta = upload_ok(client), upload_ok(client, [{"prompt": f"b{i}", "completion": "y"} for i in range(4)])
    alpha_split, beta_split = learned(alpha, "alpha", 2, 0), learned(beta, "beta", 3, 1)
    alpha_bytes = Path(get_storage().uri(file_key(client.get(f"/v1/files/{alpha}").json()["sha256"])))

    error = assert_error(client.delete(f"/v1/files/{alpha}"), 409, param="file_id", code="file_in_use")
    assert "force=true" in error["message"]
    assert client.get("/v1/models/bot/evaluations").json()["unevaluable"] == {}

    assert client.delete(f"/v1/files/{alpha}", params={"force": "true"}).status_code == 200
    assert_error(client.get(f"/v1/files/{alpha}"), 404)
    assert not alpha_bytes.exists() and not alpha_split.exists() and beta_split.exists()
    record = client.get("/v1/models/bot/evaluations").json()
    assert list(record["unevaluable"]) == ["alpha"] and alpha in record["unevaluable"]["alpha"]
    assert record["tasks"] == ["alpha", "beta"] and record["matrix"] == [[0.5, None], [None, 0.5]]  # scores stay


def test_a_file_an_unfinished_job_uses_is_not_deleted_even_with_force(lineage):
    client, _ = lineage
    file_id = upload_ok(client)
    job = create_job(client, "bot", file_id).json()
    error = assert_error(client.delete(f"/v1/files/{file_id}", params={"force": "true"}), 409, code="file_in_use")
    assert job["id"] in error["message"]
    assert client.get(f"/v1/files/{file_id}").status_code == 200


def test_later_jobs_neither_evaluate_nor_replay_a_task_whose_data_was_deleted(lineage):
    from worker.job_inputs import resolve

    client, _ = lineage
    alpha, beta = upload_ok(client), upload_ok(client, [{"prompt": f"b{i}", "completion": "y"} for i in range(4)])
    learned(alpha, "alpha", 2, 0)
    learned(beta, "beta", 3, 1)
    client.delete(f"/v1/files/{alpha}", params={"force": "true"})
    job = create_job(client, "bot", upload_ok(client), suffix="gamma").json()
    with session_scope() as session:
        row = session.query(Job).filter_by(id=job["id"]).one()
        session.expunge(row)
    inputs = resolve(row)
    assert [t.name for t in inputs.learned] == ["beta"]
    assert {r["prompt"] for r in inputs.prior_records} == {f"b{i}" for i in range(4)}  # only beta's data
    with session_scope() as session:
        # (A queued job with no live worker also gets a warning: that one says what it waits for.)
        events = [e for e in session.query(JobEvent).filter_by(job_id=job["id"], level="warn")
                  if "unevaluable" in (e.data or {})]
        assert [e.data for e in events] == [{"unevaluable": ["alpha"]}] and "alpha" in events[0].message
