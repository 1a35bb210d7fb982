"""A user's mistake in a job's own settings fails the job with a code, the setting to change and a
message that says what is wrong, not as an internal error that points at the worker's log."""

from __future__ import annotations

from tests.worker.harness import records, submit, upload, wait_for


def test_a_target_regex_that_matches_no_layer_is_reported_on_the_job(sqlite_client, tiny_base, workers):
    client = sqlite_client
    assert client.post("/v1/models", json={"id": "m", "base_model": str(tiny_base)}).status_code == 201
    workers(1)
    job = wait_for(client, submit(client, "m", upload(client, records("alpha")), "alpha",
                                  retention={"target_regex": "no_such_layer"}))
    assert job["status"] == "failed", job
    error = job["error"]
    assert error["code"] == "invalid_training_config", error
    assert error["param"] == "continual.retention.target_regex"
    assert "'no_such_layer' matches none of the model's linear layers" in error["message"]
    assert "worker log" not in error["message"]
    assert client.get("/v1/models/m").json()["head"] == 1


def test_a_settings_error_keeps_its_setting_when_it_comes_from_a_training_process():
    from worker.engine.config import SettingsError
    from worker.engine.distributed import _portable

    error = SettingsError("target_regex 'x' matches nothing", "continual.retention.target_regex")
    passed = _portable(error, rank=1, size=2)  # what a rank of a multi-device job hands back
    assert isinstance(passed, SettingsError)
    assert (passed.param, passed.code, str(passed)) == (error.param, "invalid_training_config", str(error))


def test_a_cancel_during_calibrating_ends_the_job_cancelled(sqlite_client, tiny_base, workers):
    """The job is held in calibrating (a fault pause) with a regex that would fail it there; a cancel then
    ends it cancelled, at the phase's end, not failed, and not only at a training step."""
    client = sqlite_client
    assert client.post("/v1/models", json={"id": "m", "base_model": str(tiny_base)}).status_code == 201
    workers(1, SCULPT_FAULT_PAUSE_AT="calibrating", SCULPT_FAULT_PAUSE_SECONDS="5")
    job_id = submit(client, "m", upload(client, records("alpha")), "alpha", retention={"target_regex": "no_such_layer"})
    wait_for(client, job_id, until=lambda job: (job["progress"] or {}).get("phase") == "calibrating")
    assert client.post(f"/v1/fine_tuning/jobs/{job_id}/cancel").status_code == 200
    job = wait_for(client, job_id)
    assert job["status"] == "cancelled", job
    assert job["error"] is None
    assert client.get("/v1/models/m").json()["head"] == 1
