"""kill -9 of a worker at the worst moments, then a new worker: the job still ends well, once."""

from __future__ import annotations

import signal

import pytest

from tests.faults.invariants import assert_lineage_intact
from tests.worker.harness import records, submit, upload, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def _in_phase(phase):
    return lambda job: (job.get("progress") or {}).get("phase") == phase or job["status"] in (
        "succeeded", "failed", "cancelled")


@pytest.mark.parametrize("phase", ["training", "evaluating", "saving"])
def test_worker_killed_mid_job_is_replaced_and_the_job_runs_again_from_its_base(
        phase, pg_client, pg_env, tiny_base, workers):
    client = pg_client
    client.post("/v1/models", json={"id": "k", "base_model": str(tiny_base)})
    train = upload(client, records("kappa", 60))
    # Each phase is held on purpose, so a fast machine cannot run past it (saving at the worst
    # moment: checkpoint stored, version row not yet written).
    pause = {"SCULPT_FAULT_PAUSE_AT": {"saving": "commit"}.get(phase, phase)}
    [first] = workers(1, **pause)
    job_id = submit(client, "k", train, "kappa")
    job = wait_for(client, job_id, until=_in_phase(phase), timeout=300)
    assert job["status"] == "running", job
    if phase == "saving":  # the checkpoint is in place, its version row not yet written
        folder = pg_env.resolved_artifact_root / "checkpoints" / "k" / "v2"
        wait_for(client, job_id, until=lambda _: folder.exists(), timeout=120)
    first.send_signal(signal.SIGKILL)
    first.wait()

    workers(1)
    job = wait_for(client, job_id, timeout=300)
    assert job["status"] == "succeeded", job
    assert job["fine_tuned_model"] == "k:v2"
    attempts = [e for e in client.get(f"/v1/fine_tuning/jobs/{job_id}/events?limit=100&type=message").json()["data"]
                if e["message"].startswith("Attempt")]
    assert len(attempts) == 2
    versions = assert_lineage_intact(client, "k", pg_env.resolved_artifact_root)
    assert [v["version"] for v in versions] == [1, 2]


def test_a_redelivered_message_does_not_run_the_job_twice(pg_client, pg_env, tiny_base, workers, tmp_path):
    client = pg_client
    client.post("/v1/models", json={"id": "r", "base_model": str(tiny_base)})
    train = upload(client, records("rho", 300))
    # Redis hands the unacknowledged message to the idle second worker after 2 s; the reconciler
    # is kept quiet so that Redis is the only source of a second copy.
    workers(2, SCULPT_BROKER_VISIBILITY_TIMEOUT="2", SCULPT_RECONCILE_SECONDS="3600")
    job_id = client.post("/v1/fine_tuning/jobs", json={
        "model": "r", "training_file": train, "hyperparameters": {"n_epochs": 2, "batch_size": 4},
        "continual": {"task": "rho", "learning_rate": 3e-3}}).json()["id"]
    job = wait_for(client, job_id, timeout=400)
    assert job["status"] == "succeeded", job
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("worker-*.log"))
    assert logs.count(f"is held by another worker; it will run job {job_id}") >= 1, "no redelivery happened"
    attempts = [e for e in client.get(f"/v1/fine_tuning/jobs/{job_id}/events?limit=100&type=message").json()["data"]
                if e["message"].startswith("Attempt")]
    assert len(attempts) == 1
    assert [v["version"] for v in assert_lineage_intact(client, "r", pg_env.resolved_artifact_root)] == [1, 2]
