"""Evaluation suites are plug-ins: one defined here registers, runs on a real job's version, and its
results and measures land in the version's metrics; the lineage's suite files are a map."""

from __future__ import annotations

import pytest

from app.jobs.schemas import JobCreate
from app.lineages.suites import SUITES, Gate, Suite, reference_shape, register, unit_interval
from tests.worker.harness import records, submit, upload


@pytest.fixture
def toy_suite():
    """A suite that counts what it is given and how long the model's texts get, a second measure as a
    ratio to the lineage's base; it registers both halves and is removed again afterwards."""
    from worker.evaluation.suites import RUNNERS, runs

    suite = register(Suite(
        name="toy", purpose="toy", default_data="reference.jsonl", shape=reference_shape,
        measures=("toy_records", "toy_vocab_ratio"), description="A test suite.",
        derive=lambda result, base: {"toy_vocab_ratio": result["toy_vocab"] / base["toy_vocab"] if base else None}))

    @runs("toy")
    def run(model, tokenizer, rows, baseline):
        return {"toy_records": len(rows), "toy_vocab": tokenizer.vocab_size}

    yield suite
    SUITES.pop("toy")
    RUNNERS.pop("toy")


def test_a_suite_defined_here_is_evaluated_on_a_real_jobs_version(sqlite_client, tiny_base, toy_suite):
    from app.lineages.suites import GENERAL, default_records
    from worker.scheduler import run_lineage_for

    client = sqlite_client
    assert client.post("/v1/models", json={"id": "s", "base_model": str(tiny_base)}).status_code == 201
    job_id = submit(client, "s", upload(client, records("alpha")), "alpha")
    run_lineage_for(job_id, frozenset({"default"}))  # a real job, run by this process's worker code

    job = client.get(f"/v1/fine_tuning/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job
    n = len(default_records(GENERAL))
    assert client.get("/v1/models/s/versions/1").json()["metrics"]["toy"]["toy_records"] == n
    toy = client.get("/v1/models/s/versions/2").json()["metrics"]["toy"]
    assert toy["toy_records"] == n and toy["toy_vocab_ratio"] == 1.0
    assert {"perplexity", "perplexity_ratio"} <= set(client.get("/v1/models/s/versions/2").json()["metrics"]["general"])
    events = client.get(f"/v1/fine_tuning/jobs/{job_id}/events?limit=100").json()["data"]
    assert any((e.get("data") or {}).get("suite") == "toy" for e in events)
    # The event says what a suite means against the base (general_answers: general_kept), measures first.
    assert any(e["message"].startswith("Suite toy: toy_records ") and "toy_vocab_ratio 1.000" in e["message"]
               for e in events)
    # The default gate's figure is in the job's result, with what it rests on (a tiny base answers none right).
    assert (job["result"]["general_kept"], job["result"]["general_asked"]) == (None, 0)


@pytest.fixture
def gated_suite():
    """A suite (its torch-free half) that declares a gate on its measure; removed again afterwards."""
    yield register(Suite(
        name="scored", purpose="scored", default_data="reference.jsonl", shape=reference_shape,
        measures=("toy_score",), description="A test suite with a gate.",
        gates=(Gate("min_toy_score", "toy_score", False, unit_interval, "between 0 and 1",
                    description="The least toy score a version may have."),)))
    SUITES.pop("scored")


def test_a_gate_a_suite_declares_can_be_set_on_a_lineage_and_a_job(sqlite_client, tiny_base, gated_suite):
    client = sqlite_client
    made = client.post("/v1/models", json={"id": "g", "base_model": str(tiny_base), "gates": {"min_toy_score": 0.5}})
    assert made.status_code == 201, made.text
    assert made.json()["gates"] == {"min_toy_score": 0.5}
    job = client.get(f"/v1/fine_tuning/jobs/{submit(client, 'g', upload(client, records('a')), 'a')}").json()
    assert job["continual"]["gates"] == {"min_toy_score": 0.5}  # the lineage's, on its job
    own = submit(client, "g", upload(client, records("b")), "b", gates={"min_toy_score": 0.7})
    job = client.get(f"/v1/fine_tuning/jobs/{own}").json()
    assert job["continual"]["gates"] == {"min_toy_score": 0.7}
    bad = client.put("/v1/models/g/gates", json={"min_toy_score": 2})
    assert bad.status_code == 422 and "between 0 and 1" in bad.json()["error"]["message"], bad.text
    assert client.put("/v1/models/g/gates", json={"min_toy_score": 0.9}).json()["gates"] == {"min_toy_score": 0.9}
    assert "min_toy_score" in client.get("/v1/capabilities").json()["gates"]
    assert "min_toy_score" in JobCreate.model_json_schema()["$defs"]["Gates"]["properties"]


def test_suite_files_are_a_map_that_keeps_the_one_suite_fields(sqlite_client, tiny_base):
    from tests.worker.test_gates import _safety_suite

    client = sqlite_client
    safety = _safety_suite(client)
    made = client.post("/v1/models", json={"id": "m", "base_model": str(tiny_base), "suites": {"safety": safety}})
    assert made.status_code == 201, made.text
    assert made.json()["suites"] == {"safety": safety} and made.json()["safety_file"] == safety
    reference = client.post("/v1/files", data={"purpose": "reference"},
                            files={"file": ("r.jsonl", b'{"text": "hello there"}\n', "application/jsonl")}).json()["id"]
    updated = client.post("/v1/models/m/suites", json={"reference_file": reference}).json()
    assert updated["suites"] == {"safety": safety, "reference": reference}
    assert updated["reference_file"] == reference and updated["safety_file"] == safety

    unknown = client.post("/v1/models/m/suites", json={"suites": {"vibes": reference}})
    assert unknown.status_code == 422 and unknown.json()["error"]["param"] == "suites.vibes"
    wrong = client.post("/v1/models/m/suites", json={"suites": {"safety": reference}})
    assert wrong.status_code == 422 and wrong.json()["error"]["param"] == "suites.safety"
    assert client.get("/v1/models/m").json()["suites"] == {"safety": safety, "reference": reference}
    in_use = client.delete(f"/v1/files/{reference}")
    assert in_use.status_code == 409 and "model 'm'" in in_use.json()["error"]["message"]
