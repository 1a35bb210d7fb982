"""A dataset posted over HTTP becomes a trained, evaluated, versioned checkpoint, run by a real
worker process, on PostgreSQL + Redis and on the embedded SQLite + filesystem broker."""

from __future__ import annotations

import csv
import io
import re
from itertools import pairwise
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from tests.worker.harness import leftovers, records, submit, train_two_tasks, upload, wait_for
from worker.checkpoints import verify_checkpoint


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])])
def backend(request):
    return request.getfixturevalue("sqlite_client" if request.param == "sqlite" else "pg_client")


def test_two_tasks_in_sequence_make_a_chain_of_verified_versions(backend, tiny_base, workers):
    client = backend
    jobs, versions = train_two_tasks(client, tiny_base, workers)
    first = jobs[0]["id"]
    assert all(j["trained_tokens"] > 0 for j in jobs)

    assert versions[2]["parent_version"] == 1 and versions[3]["parent_version"] == 2
    assert client.get("/v1/models/bot").json()["head"] == 3
    for n in (2, 3):
        folder = Path(versions[n]["checkpoint_uri"])
        verify_checkpoint(folder, versions[n]["checkpoint_sha256"])
        assert AutoModelForCausalLM.from_pretrained(folder) is not None

    record = client.get("/v1/models/bot/evaluations").json()
    assert record["tasks"] == ["alpha", "beta"]
    rows = dict(zip(record["versions"], record["matrix"], strict=True))
    assert rows[2][0] is not None and rows[3][0] is not None and rows[3][1] is not None
    assert record["acc"] is not None and record["bwt"] is not None
    assert record["fwt"] is not None  # beta was scored on v1 and on v2 before training

    phases = [e["data"]["phase"] for e in client.get(f"/v1/fine_tuning/jobs/{first}/events?limit=100").json()["data"]
              if (e.get("data") or {}).get("phase")]
    assert set(phases) >= {"calibrating", "decomposing", "training", "evaluating", "saving"}


@pytest.mark.postgres
@pytest.mark.redis
def test_five_jobs_on_one_lineage_with_two_workers_run_one_at_a_time_in_order(pg_client, tiny_base, workers):
    client = pg_client
    client.post("/v1/models", json={"id": "chain", "base_model": str(tiny_base)})
    file_id = upload(client, records("gamma", 12))
    workers(2)
    job_ids = [submit(client, "chain", file_id, f"t{i}") for i in range(5)]
    jobs = [wait_for(client, job_id, timeout=400) for job_id in job_ids]
    assert [j["status"] for j in jobs] == ["succeeded"] * 5
    assert [j["fine_tuned_model"] for j in jobs] == [f"chain:v{n}" for n in range(2, 7)]
    versions = client.get("/v1/models/chain/versions?limit=100").json()["data"]
    assert {v["version"]: v["parent_version"] for v in versions} == {1: None, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5}
    for earlier, later in pairwise(jobs):
        assert earlier["finished_at"] <= later["created_at"] or earlier["finished_at"] <= _started(client, later)


def _started(client, job: dict) -> int:
    events = client.get(f"/v1/fine_tuning/jobs/{job['id']}/events?limit=100").json()["data"]
    return min(e["created_at"] for e in events if e["message"].startswith("Attempt"))


def test_cancel_a_running_job_leaves_no_version_and_no_folder(sqlite_client, sqlite_env, tiny_base, workers):
    client = sqlite_client
    client.post("/v1/models", json={"id": "c", "base_model": str(tiny_base)})
    workers(1, SCULPT_FAULT_PAUSE_AT="training", SCULPT_FAULT_PAUSE_SECONDS="3")  # seen training, on any machine
    body_records = records("delta", 400)
    job_id = submit(client, "c", upload(client, body_records), "delta")
    wait_for(client, job_id, until=lambda j: (j.get("progress") or {}).get("phase") == "training")
    assert client.post(f"/v1/fine_tuning/jobs/{job_id}/cancel").status_code == 200
    job = wait_for(client, job_id, timeout=60)
    assert job["status"] == "cancelled" and job["fine_tuned_model"] is None
    assert [v["version"] for v in client.get("/v1/models/c/versions").json()["data"]] == [1]
    assert client.get("/v1/models/c").json()["head"] == 1
    assert not (sqlite_env.resolved_artifact_root / "checkpoints" / "c").exists() or not any(
        (sqlite_env.resolved_artifact_root / "checkpoints" / "c").iterdir())
    assert leftovers(sqlite_env.resolved_artifact_root) == []


def test_diverging_loss_and_corrupt_base_each_fail_clearly_and_keep_the_head(sqlite_client, tiny_base, tmp_path,
                                                                           workers):
    client = sqlite_client
    client.post("/v1/models", json={"id": "nan", "base_model": str(tiny_base)})
    broken = tmp_path / "broken-base"
    broken.mkdir()
    for item in tiny_base.iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    client.post("/v1/models", json={"id": "corrupt", "base_model": str(broken)})
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    workers(1)
    file_id = upload(client, records("eps"))
    diverging = client.post("/v1/fine_tuning/jobs", json={
        "model": "nan", "training_file": file_id, "hyperparameters": {"learning_rate_multiplier": 100},
        "continual": {"task": "eps", "learning_rate": 1.0, "strategy": "full"}}).json()["id"]
    corrupt = submit(client, "corrupt", file_id, "eps")

    nan_job, corrupt_job = wait_for(client, diverging), wait_for(client, corrupt)
    assert nan_job["status"] == "failed" and nan_job["error"]["code"] == "nan_loss", nan_job
    assert "learning rate" in nan_job["error"]["message"]
    assert corrupt_job["status"] == "failed" and corrupt_job["error"]["code"] == "model_not_loadable", corrupt_job
    assert "corrupt:v1" in corrupt_job["error"]["message"]
    for model in ("nan", "corrupt"):
        assert client.get(f"/v1/models/{model}").json()["head"] == 1
    # The failed job scored eps on v1 before training; no version learned eps, so the record has no column for it.
    record = client.get("/v1/models/nan/evaluations").json()
    assert record["tasks"] == [] and record["matrix"] == []


def test_a_job_records_every_steps_loss_each_epochs_validation_loss_and_a_results_csv(sqlite_client, tiny_base,
                                                                                      workers):
    client = sqlite_client
    client.post("/v1/models", json={"id": "curve", "base_model": str(tiny_base)})
    workers(1, SCULPT_FAULT_PAUSE_AT="calibrating", SCULPT_FAULT_PAUSE_SECONDS="3")
    response = client.post("/v1/fine_tuning/jobs", json={
        "model": "curve", "training_file": upload(client, records("kappa")), "seed": 0,
        "validation_file": upload(client, records("kappa", 32)[24:]),  # held out: none of the 24 trained on
        "hyperparameters": {"n_epochs": 2, "batch_size": 4},
        "continual": {"task": "kappa", "learning_rate": 3e-3}})
    assert response.status_code == 201, response.text
    job = wait_for(client, response.json()["id"])
    assert job["status"] == "succeeded", job

    # 24 records in batches of 4: 6 steps an epoch, 12 in all, each one a point of the curve.
    events = client.get(f"/v1/fine_tuning/jobs/{job['id']}/events?type=metrics&order=asc&limit=100").json()["data"]
    points = [e["data"] for e in events if "train_loss" in e["data"]]
    assert [p["step"] for p in points] == list(range(1, 13))
    assert [p["step"] for p in points if p["valid_loss"] is not None] == [6, 12]
    [checkpoint] = client.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints").json()["data"]
    assert checkpoint["metrics"]["train_loss"] == points[-1]["train_loss"]
    assert checkpoint["metrics"]["valid_loss"] == points[-1]["valid_loss"]

    [results] = job["result_files"]
    assert client.get(f"/v1/files/{results}").json()["purpose"] == "fine-tune-results"
    rows = list(csv.DictReader(io.StringIO(client.get(f"/v1/files/{results}/content").text)))
    assert [int(r["step"]) for r in rows] == list(range(1, 13)) and rows[0]["valid_loss"] == ""
    assert float(rows[-1]["train_loss"]) == points[-1]["train_loss"]
    assert float(rows[-1]["valid_loss"]) == points[-1]["valid_loss"]

    # "Trained N steps in S s" times the training phase alone, not the 3 s held in calibrating before it.
    messages = client.get(f"/v1/fine_tuning/jobs/{job['id']}/events?order=asc&limit=100").json()["data"]
    started = next(e for e in messages if e["message"] == "Phase: training")["created_at"]
    trained = next(e for e in messages if e["message"].startswith("Trained 12 steps"))
    seconds = float(re.search(r" in ([0-9.]+)s;", trained["message"])[1])
    assert seconds <= trained["created_at"] - started + 1  # event times are whole seconds
