"""GET /v1/capabilities lists exactly what job creation accepts: the clients' choices come from it."""

from __future__ import annotations

import pytest

from app.jobs import strategies as specs
from app.jobs.schemas import JobCreate, JobObject
from tests.api.helpers import assert_error, create_job, register, upload_ok


@pytest.fixture
def plugin_spec():
    spec = specs.register(specs.StrategySpec("biases_only", "A test's plug-in.", needs_prior_tasks=False))
    yield spec
    specs.unregister(spec.name)


def _enum(schema: dict, model: str, field: str) -> list[str]:
    definition = schema["$defs"].get(model, schema)["properties"][field]
    return definition["enum"]


def test_capabilities_list_what_the_spec_accepts(sqlite_client, base_model_dir, plugin_spec):
    client = sqlite_client
    capabilities = client.get("/v1/capabilities").json()
    request = JobCreate.model_json_schema()
    names = [s["name"] for s in capabilities["strategies"]]
    assert names == _enum(request, "Continual", "strategy") and "biases_only" in names
    assert capabilities["default_strategy"] == request["$defs"]["Continual"]["properties"]["strategy"]["default"]
    assert capabilities["metrics"] == _enum(request, "Continual", "metric")
    assert capabilities["gates"] == list(request["$defs"]["Gates"]["properties"])
    assert capabilities["default_gates"] == {"max_forgetting": 0.25, "min_general_kept": 0.8}
    assert capabilities["statuses"] == _enum(JobObject.model_json_schema(), "JobObject", "status")
    assert set(capabilities["terminal_statuses"]) < set(capabilities["statuses"])
    assert capabilities["phases"][0] == "loading" and "training" in capabilities["phases"]
    lora = next(s for s in capabilities["strategies"] if s["name"] == "lora")
    assert lora["settings_field"] == "lora" and set(lora["settings_schema"]["properties"]) == {"r", "alpha", "dropout"}
    assert lora["shardings"] == ["ddp"]
    # LoRA's adapters start at zero: full fine-tuning's rate leaves them untrained (bench/RESULTS.md).
    full = next(s for s in capabilities["strategies"] if s["name"] == "full")
    assert lora["default_learning_rate"] > full["default_learning_rate"]

    register(client, "m", base_model_dir)
    assert client.get("/v1/models/m").json()["gates"] == capabilities["default_gates"]
    training = upload_ok(client)
    for strategy in capabilities["strategies"]:  # every one listed is accepted, with its settings field
        settings = {strategy["settings_field"]: {}} if strategy["settings_field"] else {}
        response = create_job(client, "m", training, continual={"task": strategy["name"], "strategy": strategy["name"],
                                                                **settings})
        assert response.status_code == 201, response.text
        job = response.json()
        assert job["continual"]["strategy"] == strategy["name"]
        # The rate the job trains with is written on it, so a later change of default leaves it as it was.
        assert job["continual"]["learning_rate"] == strategy["default_learning_rate"]
    chosen = create_job(client, "m", training,
                        continual={"task": "own-rate", "strategy": "lora", "learning_rate": 0.02})
    assert chosen.json()["continual"]["learning_rate"] == 0.02
    # adaptive_svd scales its default rate to the model's weights, and uses a rate given as given; the job
    # says which it does.
    default_rate, own_rate = (create_job(client, "m", training, continual={"task": task, **rate}).json()
                              for task, rate in (("default-rate", {}), ("own-svd-rate", {"learning_rate": 1e-5})))
    assert default_rate["continual"]["retention"]["relative_step"] is True
    assert own_rate["continual"]["retention"]["relative_step"] is False
    error = assert_error(create_job(client, "m", training, continual={"strategy": "magic"}), 422,
                         param="continual.strategy")
    assert all(name in error["message"] for name in names)
    assert client.get("/openapi.json").json()["paths"]["/v1/capabilities"]["get"]
