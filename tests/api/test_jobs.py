from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from app.core.db.session import session_scope
from app.core.db.tables import Job, ModelVersion
from app.core.enums import EventType
from app.jobs.service import add_event
from app.lineages.gates import default_gates
from tests.api.helpers import assert_error, create_job, register, upload_ok


def set_job(job_id: str, **values) -> None:
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(**values))


def test_create_and_get_job(client, base_model_dir):
    register(client, "m", base_model_dir)
    training = upload_ok(client)
    response = create_job(client, "m", training, suffix="adds", seed=7, metadata={"pipeline": "nightly"},
                          hyperparameters={"n_epochs": 2},
                          continual={"strategy": "full", "gates": {"max_forgetting": 0.1}})
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["id"].startswith("ftjob-") and job["object"] == "fine_tuning.job"
    assert (job["model"], job["status"], job["training_file"], job["seed"]) == ("m", "queued", training, 7)
    assert job["hyperparameters"] == {"n_epochs": 2, "batch_size": "auto", "learning_rate_multiplier": "auto"}
    assert job["continual"]["task"] == "adds" and job["continual"]["strategy"] == "full"
    assert job["continual"]["gates"] == {**default_gates(), "max_forgetting": 0.1}  # over the lineage's
    assert job["metadata"] == {"pipeline": "nightly"} and job["fine_tuned_model"] is None
    assert job["error"] is None and job["finished_at"] is None and isinstance(job["created_at"], int)
    assert client.get(f"/v1/fine_tuning/jobs/{job['id']}").json() == job
    with session_scope() as session:
        assert session.scalar(select(Job.enqueued_at).where(Job.id == job["id"])) is not None


def test_job_stays_queued_when_the_broker_is_down(sqlite_client, base_model_dir, monkeypatch):
    from app.core.broker import celery_client

    def broken(*_args, **_kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(celery_client(), "send_task", broken)
    register(sqlite_client, "m", base_model_dir)
    job = create_job(sqlite_client, "m", upload_ok(sqlite_client)).json()
    assert job["status"] == "queued"
    with session_scope() as session:
        assert session.scalar(select(Job.enqueued_at).where(Job.id == job["id"])) is None


def test_create_validation_errors(client, base_model_dir):
    register(client, "m", base_model_dir)
    training = upload_ok(client)
    assert_error(create_job(client, "nope", training), 404, param="model", code="model_not_found")
    assert_error(create_job(client, "m:v5", training), 404, param="model", code="version_not_found")
    assert_error(create_job(client, "m:vx", training), 422, param="model", code="invalid_model")
    assert_error(create_job(client, "m", "file-missing"), 404, param="training_file")
    assert_error(create_job(client, "m", training, validation_file="file-missing"), 404, param="validation_file")
    bad = {
        "hyperparameters": {"n_epochs": 0}, "seed": -1, "suffix": "has space",
        "continual": {"strategy": "magic"},
    }
    for field, value in bad.items():
        assert_error(create_job(client, "m", training, **{field: value}), 422)
    checks = [
        ({"hyperparameters": {"batch_size": 5000}}, "hyperparameters.batch_size"),
        ({"hyperparameters": {"learning_rate_multiplier": 0}}, "hyperparameters.learning_rate_multiplier"),
        ({"continual": {"retention": {"min_ratio": 1.5}}}, "continual.retention.min_ratio"),
        ({"continual": {"retention": {"target_regex": "("}}}, "continual.retention.target_regex"),
        ({"continual": {"metric": "choice"}}, "continual"),
        ({"continual": {"devices": ["tpu"]}}, "continual.devices"),
        ({"continual": {"learning_rate": 5}}, "continual.learning_rate"),
        ({"continual": {"gates": {"max_forgetting": 2}}}, "continual.gates.max_forgetting"),
        ({"continual": {"gates": {"min_refusal_rate": -0.5}}}, "continual.gates.min_refusal_rate"),
        ({"continual": {"bogus": 1}}, "continual.bogus"),
        ({"n_epochs": 3}, "n_epochs"),
    ]
    for fields, param in checks:
        error = assert_error(create_job(client, "m", training, **fields), 422, param=param)
        if "bogus" in param or param == "n_epochs":
            assert "unknown field" in error["message"]
    assert client.get("/v1/fine_tuning/jobs").json()["data"] == []


def test_lora_settings_are_validated_stored_and_shown(sqlite_client, base_model_dir):
    client = sqlite_client
    register(client, "m", base_model_dir)
    training = upload_ok(client)
    job = create_job(client, "m", training, continual={"strategy": "lora", "lora": {"r": 4, "alpha": 8}})
    assert job.status_code == 201, job.text
    assert job.json()["continual"]["lora"] == {"r": 4, "alpha": 8, "dropout": 0.0}  # defaults filled in
    lora_only = "does not apply to strategy 'full'"
    for lora, param, message in [({"r": 0}, "continual.lora.r", None), ({"r": "4"}, "continual.lora.r", None),
                                 ({"dropout": 1.0}, "continual.lora.dropout", None),
                                 ({"rank": 4}, "continual.lora.rank", "unknown field")]:
        error = assert_error(create_job(client, "m", training, continual={"strategy": "lora", "lora": lora}), 422,
                             param=param)
        assert message is None or message in error["message"]
    error = assert_error(create_job(client, "m", training, continual={"strategy": "full", "lora": {"r": 4}}), 422,
                         param="continual")
    assert lora_only in error["message"]
    assert len(client.get("/v1/fine_tuning/jobs").json()["data"]) == 1


def test_requested_version_must_be_the_head(client, base_model_dir):
    register(client, "m", base_model_dir)
    training = upload_ok(client)
    assert create_job(client, "m:v1", training, suffix="one").status_code == 201
    with session_scope() as session:
        session.add(ModelVersion(model_id="m", version=2, parent_version=1, checkpoint_uri="/x"))
    client.post("/v1/models/m/head", json={"version": 2, "reason": "newer"})
    assert_error(create_job(client, "m:v1", training, suffix="two"), 409, param="model", code="head_moved")


def test_task_names_are_unique_per_lineage(sqlite_client, base_model_dir):
    register(sqlite_client, "m", base_model_dir)
    training = upload_ok(sqlite_client)
    first = create_job(sqlite_client, "m", training, continual={"task": "adds"})
    assert first.status_code == 201
    assert_error(create_job(sqlite_client, "m", training, continual={"task": "adds"}), 409,
                 param="continual.task", code="task_exists")
    default_named = create_job(sqlite_client, "m", training).json()
    assert default_named["continual"]["task"] == training


def test_idempotency_key(client, base_model_dir):
    register(client, "m", base_model_dir)
    training = upload_ok(client)
    headers = {"Idempotency-Key": "nightly-2026-01-01"}
    body = {"model": "m", "training_file": training, "suffix": "a"}
    first = client.post("/v1/fine_tuning/jobs", json=body, headers=headers)
    again = client.post("/v1/fine_tuning/jobs", json=body, headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    other = client.post("/v1/fine_tuning/jobs", json={**body, "suffix": "b"}, headers=headers)
    assert_error(other, 409, code="idempotency_key_reused")
    assert len(client.get("/v1/fine_tuning/jobs").json()["data"]) == 1


def test_list_pagination_and_metadata_filter(client, base_model_dir):
    register(client, "m", base_model_dir)
    training = upload_ok(client)
    ids = [create_job(client, "m", training, suffix=f"t{i}", metadata={"batch": str(i % 2)}).json()["id"]
           for i in range(5)]
    page = client.get("/v1/fine_tuning/jobs", params={"limit": 2}).json()
    assert [j["id"] for j in page["data"]] == ids[::-1][:2] and page["has_more"] is True
    rest = client.get("/v1/fine_tuning/jobs", params={"limit": 10, "after": page["data"][-1]["id"]}).json()
    assert [j["id"] for j in rest["data"]] == ids[::-1][2:] and rest["has_more"] is False
    odd = client.get("/v1/fine_tuning/jobs", params={"metadata[batch]": "1"}).json()["data"]
    assert [j["id"] for j in odd] == [ids[3], ids[1]]
    assert client.get("/v1/fine_tuning/jobs", params={"metadata[none]": "1"}).json()["data"] == []
    assert_error(client.get("/v1/fine_tuning/jobs", params={"limit": 0}), 422, param="limit")
    assert_error(client.get("/v1/fine_tuning/jobs", params={"after": "ftjob-nope"}), 404, param="after")


def test_events_cursor_and_type(client, base_model_dir):
    register(client, "m", base_model_dir)
    job = create_job(client, "m", upload_ok(client)).json()
    with session_scope() as session:
        for step in range(4):
            add_event(session, job["id"], f"step {step}", type=EventType.METRICS,
                      data={"step": step, "loss": 1.0 / (step + 1)})
        add_event(session, job["id"], "slow data loader", level="warning")
    events = client.get(f"/v1/fine_tuning/jobs/{job['id']}/events").json()
    assert events["object"] == "list"
    messages = [e["message"] for e in events["data"]]
    assert messages[0] == "slow data loader" and messages[-1] == f"Created fine-tuning job: {job['id']}"
    first = events["data"][0]
    assert first["id"].startswith("ftevent-") and first["object"] == "fine_tuning.job.event"
    assert first["level"] == "warn" and first["type"] == "message" and isinstance(first["created_at"], int)
    metrics = client.get(f"/v1/fine_tuning/jobs/{job['id']}/events", params={"type": "metrics"}).json()["data"]
    assert [e["data"]["step"] for e in metrics] == [3, 2, 1, 0]
    page = client.get(f"/v1/fine_tuning/jobs/{job['id']}/events",
                      params={"type": "metrics", "limit": 2, "after": metrics[1]["id"]}).json()
    assert [e["data"]["step"] for e in page["data"]] == [1, 0] and page["has_more"] is False
    forward = client.get(f"/v1/fine_tuning/jobs/{job['id']}/events",
                         params={"order": "asc", "after": metrics[2]["id"], "type": "metrics"}).json()["data"]
    assert [e["data"]["step"] for e in forward] == [2, 3]
    assert_error(client.get(f"/v1/fine_tuning/jobs/{job['id']}/events", params={"after": "x"}), 422, "after")
    assert_error(client.get(f"/v1/fine_tuning/jobs/{job['id']}/events", params={"type": "loss"}), 422, "type")
    assert_error(client.get("/v1/fine_tuning/jobs/ftjob-nope/events"), 404)


def test_cancel(client, base_model_dir):
    register(client, "m", base_model_dir)
    training = upload_ok(client)
    queued = create_job(client, "m", training, suffix="a").json()
    cancelled = client.post(f"/v1/fine_tuning/jobs/{queued['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["finished_at"] is not None
    assert_error(client.post(f"/v1/fine_tuning/jobs/{queued['id']}/cancel"), 409, code="job_finished")

    running = create_job(client, "m", training, suffix="b").json()
    set_job(running["id"], status="running", phase="training", started_at=datetime.now(UTC),
            progress={"step": 3, "total_steps": 10, "fraction": 0.3, "eta_seconds": 20})
    flagged = client.post(f"/v1/fine_tuning/jobs/{running['id']}/cancel").json()
    assert flagged["status"] == "running" and flagged["cancel_requested"] is True
    assert flagged["progress"] == {"phase": "training", "step": 3, "total_steps": 10, "fraction": 0.3,
                                   "eta_seconds": 20.0, "waiting_for": None, "unit": None, "stage": None}
    assert flagged["estimated_finish"] is not None
    assert_error(client.post("/v1/fine_tuning/jobs/ftjob-nope/cancel"), 404)


def test_file_in_use_cannot_be_deleted(client, base_model_dir):
    register(client, "m", base_model_dir)
    training = upload_ok(client)
    job = create_job(client, "m", training).json()
    assert_error(client.delete(f"/v1/files/{training}"), 409, code="file_in_use")
    client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel")
    assert client.delete(f"/v1/files/{training}").status_code == 200
    assert client.get(f"/v1/fine_tuning/jobs/{job['id']}").status_code == 200


def test_succeeded_job_result_and_checkpoints(client, base_model_dir):
    register(client, "m", base_model_dir)
    job = create_job(client, "m", upload_ok(client)).json()
    assert client.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints").json()["data"] == []
    with session_scope() as session:
        session.add(ModelVersion(model_id="m", version=2, parent_version=1, job_id=job["id"], status="promoted",
                                 checkpoint_uri="/ckpt/m/v2", checkpoint_sha256="cd" * 32,
                                 metrics={"train_loss": 0.5, "note": "text"}))
    set_job(job["id"], status="succeeded", result_version=2, base_version=1, trained_tokens=1234,
            finished_at=datetime.now(UTC), progress={"step": 10, "total_steps": 10},
            result={"version": 2, "promoted": True, "acc": 0.9, "bwt": -0.01, "gates": {"passed": True}})
    done = client.get(f"/v1/fine_tuning/jobs/{job['id']}").json()
    assert done["fine_tuned_model"] == "m:v2" and done["trained_tokens"] == 1234
    assert done["result"] == {"version": 2, "promoted": True, "acc": 0.9, "bwt": -0.01, "gates": {"passed": True}}
    checkpoints = client.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints").json()["data"]
    assert len(checkpoints) == 1
    checkpoint = checkpoints[0]
    assert checkpoint["fine_tuned_model_checkpoint"] == "m:v2" and checkpoint["step_number"] == 10
    assert checkpoint["metrics"] == {"step": 10, "train_loss": 0.5} and checkpoint["checkpoint_sha256"] == "cd" * 32


def test_failed_job_error(sqlite_client, base_model_dir):
    register(sqlite_client, "m", base_model_dir)
    job = create_job(sqlite_client, "m", upload_ok(sqlite_client)).json()
    set_job(job["id"], status="failed", error_code="nan_loss", error_message="The loss became NaN at step 3",
            finished_at=datetime.now(UTC))
    failed = sqlite_client.get(f"/v1/fine_tuning/jobs/{job['id']}").json()
    assert failed["error"] == {"code": "nan_loss", "message": "The loss became NaN at step 3", "param": None}


def test_queue_limit(sqlite_client, base_model_dir, monkeypatch):
    from app.core.settings import get_settings

    monkeypatch.setenv("SCULPT_MAX_QUEUED_JOBS", "1")
    get_settings.cache_clear()
    register(sqlite_client, "m", base_model_dir)
    training = upload_ok(sqlite_client)
    assert create_job(sqlite_client, "m", training, suffix="a").status_code == 201
    response = create_job(sqlite_client, "m", training, suffix="b")
    assert_error(response, 429, code="queue_full")
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.postgres
@pytest.mark.redis
def test_unreachable_redis_still_accepts_the_job_quickly(pg_env, base_model_dir, monkeypatch):
    import time

    from fastapi.testclient import TestClient

    from app.main import create_app
    from tests.conftest import reset_caches

    monkeypatch.setenv("SCULPT_BROKER_URL", "redis://127.0.0.1:1/0")
    reset_caches()
    client = TestClient(create_app())
    register(client, "m", base_model_dir)
    training = upload_ok(client)
    started = time.monotonic()
    job = create_job(client, "m", training).json()
    assert time.monotonic() - started < 5
    assert job["status"] == "queued"
    with session_scope() as session:
        assert session.scalar(select(Job.enqueued_at).where(Job.id == job["id"])) is None


def test_a_finished_job_is_in_no_phase(client, base_model_dir):
    register(client, "m", base_model_dir)
    job = create_job(client, "m", upload_ok(client)).json()
    # What a worker wrote while saving, then the job ended (as rows ended before the fix look).
    set_job(job["id"], status="succeeded", phase="saving", progress={"phase": "saving", "step": 4, "total_steps": 4},
            finished_at=datetime.now(UTC))
    done = client.get(f"/v1/fine_tuning/jobs/{job['id']}").json()
    assert done["progress"]["phase"] is None and done["progress"]["step"] == 4


def test_the_worker_ends_a_job_without_a_phase(sqlite_client, base_model_dir):
    from app.jobs import attempts

    register(sqlite_client, "m", base_model_dir)
    job = create_job(sqlite_client, "m", upload_ok(sqlite_client)).json()
    set_job(job["id"], status="running", phase="saving", progress={"phase": "saving"})
    attempts.finish(job["id"], "failed", "the store is full", error_code="disk_full")
    with session_scope() as session:
        row = session.scalar(select(Job).where(Job.id == job["id"]))
        assert row.phase is None and row.progress["phase"] is None


@pytest.mark.parametrize(("hyperparameters", "param"), [
    ({"n_epochs": True}, "hyperparameters.n_epochs"),
    ({"n_epochs": 2.0}, "hyperparameters.n_epochs"),
    ({"n_epochs": "3"}, "hyperparameters.n_epochs"),
    ({"batch_size": False}, "hyperparameters.batch_size"),
    ({"learning_rate_multiplier": True}, "hyperparameters.learning_rate_multiplier"),
])
def test_numbers_are_strict(sqlite_client, base_model_dir, hyperparameters, param):
    register(sqlite_client, "m", base_model_dir)
    training = upload_ok(sqlite_client)
    error = assert_error(create_job(sqlite_client, "m", training, hyperparameters=hyperparameters), 422,
                         param=param)
    assert "whole number" in error["message"] or "a number" in error["message"]
    assert_error(create_job(sqlite_client, "m", training, seed=True), 422, param="seed")
    assert_error(create_job(sqlite_client, "m", training, continual={"learning_rate": True}), 422,
                 param="continual.learning_rate")
    assert sqlite_client.get("/v1/fine_tuning/jobs").json()["data"] == []
    assert create_job(sqlite_client, "m", training, hyperparameters={"n_epochs": 2, "learning_rate_multiplier": 2},
                      continual={"learning_rate": 1}).status_code == 201


def test_a_training_file_too_small_to_hold_one_out_is_refused_at_creation(client, base_model_dir):
    from app.files.datasets import MIN_TRAINING_RECORDS

    register(client, "m", base_model_dir)
    one = upload_ok(client, [{"prompt": "a", "completion": "b"}])
    error = assert_error(create_job(client, "m", one), 422, param="training_file", code="too_few_records")
    assert f"at least {MIN_TRAINING_RECORDS}" in error["message"] and "validation_file" in error["message"]
    assert client.get("/v1/fine_tuning/jobs").json()["data"] == []
    # With a validation file nothing is held out of the training file, so one record is enough.
    assert create_job(client, "m", one, validation_file=upload_ok(client)).status_code == 201
    assert create_job(client, "m", upload_ok(client, [{"prompt": "a", "completion": "b"}] * 2),
                      suffix="two").status_code == 201


@pytest.mark.postgres
@pytest.mark.redis
def test_ids_past_the_database_integer_range_are_404_not_500(pg_client, base_model_dir):
    client = pg_client
    register(client, "bot", base_model_dir)
    assert_error(client.get("/v1/models/bot:v99999999999999999999"), 404, code="version_not_found")
    job = create_job(client, "bot", upload_ok(client)).json()
    events = f"/v1/fine_tuning/jobs/{job['id']}/events"
    assert_error(client.get(events, params={"after": "ftevent-999999999999999999"}), 404, param="after")
    assert_error(client.get(events, params={"after": "ftevent-999999999999999999", "order": "asc"}), 404)
    stream = client.get(f"{events}/stream", headers={"Last-Event-ID": "ftevent-999999999999999999"})
    assert_error(stream, 404, param="Last-Event-ID", code="event_not_found")
    assert_error(client.get(f"{events}/stream", params={"after": "ftevent-99999999999"}), 404, param="after")
    assert client.get(events, params={"after": "ftevent-2147483647"}).status_code == 200


@pytest.mark.postgres
@pytest.mark.redis
def test_concurrent_requests_with_one_idempotency_key_all_get_the_same_job(pg_env, base_model_dir, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from tests.faults.api_process import ApiProcess

    with ApiProcess(tmp_path / "api.log", workers=2) as api, httpx.Client(base_url=api.url, timeout=30) as http:
        register(http, "m", base_model_dir)
        training = upload_ok(http)
        for attempt in range(3):
            body = {"model": "m", "training_file": training, "continual": {"task": f"t{attempt}"}}
            headers = {"Idempotency-Key": f"nightly-{attempt}"}
            with ThreadPoolExecutor(16) as pool:
                responses = list(pool.map(lambda _, body=body, headers=headers: http.post(
                    "/v1/fine_tuning/jobs", json=body, headers=headers), range(16)))
            assert sorted(r.status_code for r in responses) == [200] * 15 + [201], [r.text for r in responses]
            assert len({r.json()["id"] for r in responses}) == 1
        assert len(http.get("/v1/fine_tuning/jobs").json()["data"]) == 3


@pytest.mark.parametrize(("retention", "param"), [
    ({"target_ratio": 0.95}, "continual.retention.target_ratio"),  # above the kept fraction's ceiling, 0.9
    ({"mode": "fixed", "fixed_ratio": 1.0}, "continual.retention.fixed_ratio"),  # would leave nothing to train
    ({"energy": 1.0}, "continual.retention.energy"),
])
def test_retention_settings_the_engine_cannot_train_with_are_refused_at_creation(sqlite_client, base_model_dir,
                                                                                 retention, param):
    register(sqlite_client, "m", base_model_dir)
    assert_error(create_job(sqlite_client, "m", upload_ok(sqlite_client), continual={"retention": retention}), 422,
                 param=param)
    assert sqlite_client.get("/v1/fine_tuning/jobs").json()["data"] == []


def test_more_devices_than_examples_a_step_are_refused_at_creation(sqlite_client, base_model_dir):
    register(sqlite_client, "m", base_model_dir)
    training = upload_ok(sqlite_client)
    error = assert_error(create_job(sqlite_client, "m", training, hyperparameters={"batch_size": 2},
                                    continual={"devices": 4}), 422, param="continual.devices")
    assert "batch_size 2 is smaller than devices 4" in error["message"]
    assert_error(create_job(sqlite_client, "m", training, continual={"devices": 16}), 422,  # "auto" batch: 8
                 param="continual.devices")
    assert sqlite_client.get("/v1/fine_tuning/jobs").json()["data"] == []
    job = create_job(sqlite_client, "m", training, hyperparameters={"batch_size": 4}, continual={"devices": 4})
    assert job.status_code == 201, job.text


def test_a_held_out_set_that_shares_records_with_the_training_file_is_refused(client, base_model_dir):
    register(client, "m", base_model_dir)
    rows = [{"prompt": f"What is {i} + 2?", "completion": str(i + 2)} for i in range(12)]
    training = upload_ok(client, rows)
    error = assert_error(create_job(client, "m", training, validation_file=training), 400,
                         param="validation_file", code="validation_overlaps_training")
    assert "is the training file" in error["message"] and "10%" in error["message"]
    copy = upload_ok(client, rows)  # the same bytes uploaded again
    error = assert_error(create_job(client, "m", training, validation_file=copy), 400, param="validation_file")
    assert f"same content as the training file {training}" in error["message"]
    # Key order differs, the record is the same: line 2 of the held-out set was trained on.
    mixed = upload_ok(client, [{"prompt": "What is 100 + 2?", "completion": "102"},
                               {"completion": "5", "prompt": "What is 3 + 2?"}])
    error = assert_error(create_job(client, "m", training, validation_file=mixed), 400, param="validation_file")
    assert error["message"].startswith(f"1 record(s) of validation_file {mixed} (line 2)")
    assert client.get("/v1/fine_tuning/jobs").json()["data"] == []  # nothing was created
    held_out = upload_ok(client, [{"prompt": "What is 100 + 2?", "completion": "102"}])
    assert create_job(client, "m", training, validation_file=held_out).status_code == 201
