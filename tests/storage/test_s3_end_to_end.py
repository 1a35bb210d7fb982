"""Real worker processes with the artifact root on an S3 API server: jobs train from and save to
the bucket, and a worker killed halfway through uploading a checkpoint leaves no version and,
after the sweep, no stray keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from tests.storage.conftest import stored_keys
from tests.worker.harness import records, submit, train_two_tasks, upload, wait_for
from worker.cache import local_checkpoint

DIE_MID_UPLOAD = str(Path(__file__).parent / "die_mid_upload")


def _checkpoint_folders(bucket, model: str) -> set[str]:
    return {key.split("/")[2] for key in stored_keys(bucket, f"checkpoints/{model}")}


def test_two_tasks_train_from_and_save_to_the_bucket(s3_client, s3_env, bucket, tiny_base, workers):
    client = s3_client
    _, versions = train_two_tasks(client, tiny_base, workers)
    assert versions[3]["parent_version"] == 2
    for n in (2, 3):
        assert versions[n]["checkpoint_uri"] == f"s3://{bucket.bucket}/sculpt/checkpoints/bot/v{n}"
    assert _checkpoint_folders(bucket, "bot") == {"v2", "v3"}
    assert not (s3_env.home_path / "artifacts").exists()
    # The second job trained from v2 through this machine's cache (the worker shares SCULPT_HOME).
    cached = s3_env.home_path / "cache" / "checkpoints" / versions[2]["checkpoint_sha256"]
    assert (cached / "model.safetensors").is_file()
    folder = local_checkpoint(versions[3]["checkpoint_uri"], versions[3]["checkpoint_sha256"])
    assert AutoModelForCausalLM.from_pretrained(folder) is not None
    record = client.get("/v1/models/bot/evaluations").json()
    assert record["tasks"] == ["alpha", "beta"] and record["matrix"][-1][0] is not None


@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_killed_mid_upload_leaves_no_version_and_the_job_runs_again(
        s3_pg_client, s3_pg_env, bucket, tiny_base, workers, tmp_path):
    client = s3_pg_client
    client.post("/v1/models", json={"id": "k", "base_model": str(tiny_base)})
    train = upload(client, records("kappa"))
    hook_path = os.pathsep.join(filter(None, [DIE_MID_UPLOAD, os.environ.get("PYTHONPATH")]))
    [dying] = workers(1, PYTHONPATH=hook_path)
    job_id = submit(client, "k", train, "kappa")
    dying.wait(timeout=300)
    assert dying.returncode == 1
    job = client.get(f"/v1/fine_tuning/jobs/{job_id}").json()
    assert job["status"] == "running" and job["progress"]["phase"] == "saving", job
    assert [v["version"] for v in client.get("/v1/models/k/versions").json()["data"]] == [1]
    assert [k for k in stored_keys(bucket, "checkpoints/k") if ".tmp-v2-" in k], "nothing was uploaded"

    workers(1)
    job = wait_for(client, job_id, timeout=300)
    assert job["status"] == "succeeded" and job["fine_tuned_model"] == "k:v2", job
    # The new worker's sweep removed the dead upload once the lease lapsed; only v2 remains.
    wait_for(client, job_id, until=lambda _: _checkpoint_folders(bucket, "k") == {"v2"}, timeout=30)
    versions = client.get("/v1/models/k/versions").json()["data"]
    assert [v["version"] for v in versions] == [1, 2]
    v2 = versions[-1]
    local_checkpoint(v2["checkpoint_uri"], v2["checkpoint_sha256"])  # verifies every file
