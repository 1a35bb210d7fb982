"""Rehearsal inside Sculpt: ``continual.replay`` mixes records of the tasks a lineage learned into a job's
training, from the data the service kept, never from their held-out splits."""

from __future__ import annotations

from tests.worker.harness import records, submit, upload
from worker.job_inputs import replay_sample


def test_a_replay_sample_is_seeded_and_never_holds_a_held_out_record():
    rows = records("alpha", 12)
    held_out = rows[:4]
    sample = replay_sample(rows, held_out, 6, "0:alpha")
    assert len(sample) == 6 and not any(r in held_out for r in sample)
    assert sample == replay_sample(rows, held_out, 6, "0:alpha")  # a retried job replays the same records
    assert sorted(map(str, replay_sample(rows, held_out, 50, "0:alpha"))) == sorted(map(str, rows[4:]))


def _steps(client, job_id: str) -> int:
    events = client.get(f"/v1/fine_tuning/jobs/{job_id}/events?limit=100").json()["data"]
    return next(e["data"]["steps"] for e in events if "steps" in (e.get("data") or {}))


def test_a_job_with_replay_trains_on_earlier_tasks_records_too(sqlite_client, tiny_base):
    from worker.scheduler import run_lineage_for

    client = sqlite_client
    assert client.post("/v1/models", json={"id": "r", "base_model": str(tiny_base)}).status_code == 201
    first = submit(client, "r", upload(client, records("alpha")), "alpha")
    run_lineage_for(first, frozenset({"default"}))
    beta = upload(client, records("beta"))
    # 24 records: 2 held out, 22 trained on, 4 a step, one epoch.
    plain = submit(client, "r", beta, "beta")
    run_lineage_for(plain, frozenset({"default"}))
    assert _steps(client, plain) == 6
    # Roll back so the same task can be learned again, this time with five of alpha's records replayed.
    assert client.post("/v1/models/r/head", json={"version": 2, "reason": "again, with replay"}).status_code == 200
    replayed = submit(client, "r", beta, "beta", replay=5)
    assert client.get(f"/v1/fine_tuning/jobs/{replayed}").json()["continual"]["replay"] == 5
    run_lineage_for(replayed, frozenset({"default"}))
    job = client.get(f"/v1/fine_tuning/jobs/{replayed}").json()
    assert job["status"] == "succeeded", job
    events = client.get(f"/v1/fine_tuning/jobs/{replayed}/events?limit=100").json()["data"]
    assert any((e.get("data") or {}).get("replay_records") == 5 for e in events)
    assert _steps(client, replayed) == 7  # 22 + 5 records


def test_replay_must_be_a_whole_number_of_records(sqlite_client, tiny_base):
    client = sqlite_client
    client.post("/v1/models", json={"id": "r", "base_model": str(tiny_base)})
    file_id = upload(client, records("alpha"))
    for bad in (-1, 2.5, "3", 5000):
        body = {"model": "r", "training_file": file_id, "continual": {"task": "alpha", "replay": bad}}
        refused = client.post("/v1/fine_tuning/jobs", json=body)
        assert refused.status_code in (400, 422) and refused.json()["error"]["param"] == "continual.replay", bad
    assert client.get("/v1/fine_tuning/jobs").json()["data"] == []
