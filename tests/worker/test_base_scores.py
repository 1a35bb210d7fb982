"""Scoring the base is a phase of its own (evaluating_base) with items-done-of-items progress, and a suite's
results on a base file are kept once: a second lineage on the same base reuses them."""

from __future__ import annotations

from tests.worker.harness import records, submit, upload


def _events(client, job_id: str) -> list[dict]:
    return client.get(f"/v1/fine_tuning/jobs/{job_id}/events?order=asc&limit=100").json()["data"]


def test_a_second_lineage_on_the_same_base_reuses_its_suite_scores(sqlite_client, tiny_base):
    from app.lineages.suites import SUITES
    from worker.scheduler import run_lineage_for

    client = sqlite_client
    jobs = {}
    for lineage in ("first", "second"):
        assert client.post("/v1/models", json={"id": lineage, "base_model": str(tiny_base)}).status_code == 201
        jobs[lineage] = submit(client, lineage, upload(client, records("alpha")), "alpha")
        run_lineage_for(jobs[lineage], frozenset({"default"}))
        assert client.get(f"/v1/fine_tuning/jobs/{jobs[lineage]}").json()["status"] == "succeeded"

    first = [e["message"] for e in _events(client, jobs["first"])]
    phases = [m.removeprefix("Phase: ") for m in first if m.startswith("Phase: ")]
    assert phases[:2] == ["evaluating_base", "calibrating"]
    # The first lineage asks the base every suite while evaluating the base, not while loading.
    base_part = first[first.index("Phase: evaluating_base"):first.index("Phase: calibrating")]
    assert {m.split(":")[0] for m in base_part if m.startswith("Suite ")} == {f"Suite {name}" for name in SUITES}

    second = [e["message"] for e in _events(client, jobs["second"])]
    reused = [m for m in second if "measured before on the same base file" in m]
    assert sorted(m.split()[1] for m in reused) == sorted(SUITES)
    assert not any(m.startswith("Suite ") and m not in reused for m in second[:second.index("Phase: calibrating")])
    base = [client.get(f"/v1/models/{lineage}/versions/1", params={"expand": "answers"}).json()["metrics"]
            for lineage in ("first", "second")]
    assert base[0] == base[1] and set(base[0]) == set(SUITES)


def test_a_scoring_phase_reports_items_done_of_items_set_by_set(sqlite_client, base_model_dir):
    from worker.progress import ItemProgress

    client = sqlite_client
    assert client.post("/v1/models", json={"id": "m", "base_model": str(base_model_dir)}).status_code == 201
    job_id = submit(client, "m", upload(client, records("alpha")), "alpha")
    progress = ItemProgress(job_id, "evaluating_base", 30)
    with progress.scoring("alpha", 10):
        shown = client.get(f"/v1/fine_tuning/jobs/{job_id}").json()["progress"]
        assert (shown["phase"], shown["unit"], shown["stage"], shown["step"], shown["total_steps"]) == (
            "evaluating_base", "items", "alpha", 0, 30)
    progress.skip("general_answers", 20)
    shown = client.get(f"/v1/fine_tuning/jobs/{job_id}").json()["progress"]
    assert (shown["stage"], shown["step"], shown["fraction"]) == ("general_answers", 30, 1.0)
