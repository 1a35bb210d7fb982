"""Strategies are plug-ins: one defined here, registered in both halves at test time, runs as a real job
(API -> worker pipeline -> version) without any other module knowing it; and LoRA's settings set through
the API reach the engine. The API and the worker run in this process, so one registration serves both."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from pydantic import Field
from safetensors.torch import load_file
from sqlalchemy import select

from app.core.db.session import session_scope
from app.core.db.tables import Job
from app.jobs import strategies as specs
from app.jobs.strategies import SettingsModel
from tests.worker.harness import records, upload
from worker.engine import strategies as implementations
from worker.engine import train_task
from worker.engine.strategies import Prepared
from worker.job_config import train_config
from worker.scheduler import run_lineage_for
from worker.tiny import build_tiny_causal_lm


class NormsOnlySettings(SettingsModel):
    pattern: str = Field("norm", description="Which parameters train (a regular expression of their names).")


class NormsOnly:
    """Trains only the normalisation weights; every other parameter stays as it was."""

    spec = specs.StrategySpec("norms_only", "Trains only the normalisation weights.", NormsOnlySettings, "options")

    def prepare(self, model, config, context) -> Prepared:  # noqa: ARG002 - Strategy's signature
        pattern = re.compile(config.options["pattern"])
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(bool(pattern.search(name)))
        trained = sorted(name for name, p in model.named_parameters() if p.requires_grad)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
        return Prepared(model, optimizer, lambda m: m, {"strategy": "norms_only", "matrices": {},
                                                        "summary": {"trained": trained}})


@pytest.fixture
def norms_only():
    strategy = NormsOnly()
    specs.register(strategy.spec)
    implementations.register(strategy)
    yield strategy
    implementations.unregister(strategy.spec.name)
    specs.unregister(strategy.spec.name)


def _run_job(client, model: str, task: str, **continual) -> dict:
    body = {"model": model, "training_file": upload(client, records(task)), "seed": 0,
            "hyperparameters": {"n_epochs": 1, "batch_size": 4},
            "continual": {"task": task, "learning_rate": 3e-3, **continual}}
    response = client.post("/v1/fine_tuning/jobs", json=body)
    assert response.status_code == 201, response.text
    run_lineage_for(response.json()["id"], frozenset({"default"}))  # the worker's entry point, in process
    return client.get(f"/v1/fine_tuning/jobs/{response.json()['id']}").json()


def _weights(version: dict) -> dict[str, torch.Tensor]:
    return load_file(Path(version["checkpoint_uri"]) / "model.safetensors")


def test_registries_of_the_api_and_the_worker_name_the_same_strategies():
    assert set(implementations.names()) == set(specs.names()) >= {"adaptive_svd", "full", "lora"}


def test_a_strategy_defined_in_a_test_runs_as_a_real_job(sqlite_client, tiny_base, norms_only):
    client = sqlite_client
    assert client.post("/v1/models", json={"id": "bot", "base_model": str(tiny_base)}).status_code == 201
    listed = {s["name"]: s for s in client.get("/v1/capabilities").json()["strategies"]}
    assert listed["norms_only"]["settings_schema"]["properties"]["pattern"]["default"] == "norm"

    job = _run_job(client, "bot", "alpha", strategy="norms_only", options={"pattern": "norm"})
    assert job["status"] == "succeeded" and job["fine_tuned_model"] == "bot:v2", job
    assert job["continual"]["options"] == {"pattern": "norm"}
    events = client.get(f"/v1/fine_tuning/jobs/{job['id']}/events?limit=100").json()["data"]
    phases = {e["data"]["phase"] for e in events if (e.get("data") or {}).get("phase")}
    assert {"calibrating", "training", "saving"} <= phases <= set(client.get("/v1/capabilities").json()["phases"])
    assert "decomposing" not in phases  # adaptive_svd's own phase
    versions = {v["version"]: v for v in client.get("/v1/models/bot/versions").json()["data"]}
    trained = versions[2]["retention"]["summary"]["trained"]
    assert trained and all("norm" in name for name in trained)
    before, after = _weights(versions[1]), _weights(versions[2])
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all("norm" in name for name in changed)  # nothing else moved

    refused = client.post("/v1/fine_tuning/jobs", json={"model": "bot", "training_file": job["training_file"],
                                                        "continual": {"strategy": "norms_only",
                                                                      "options": {"patern": "x"}}})
    assert refused.status_code == 422 and refused.json()["error"]["param"] == "continual.options.patern"


def test_lora_rank_and_alpha_set_through_the_api_reach_the_engine(sqlite_client, base_model_dir):
    client = sqlite_client
    assert client.post("/v1/models", json={"id": "bot", "base_model": str(base_model_dir)}).status_code == 201
    response = client.post("/v1/fine_tuning/jobs", json={
        "model": "bot", "training_file": upload(client, records("alpha")), "hyperparameters": {"n_epochs": 1},
        "continual": {"strategy": "lora", "lora": {"r": 4, "alpha": 8}, "retention": {"target_regex": "q_proj"}}})
    assert response.status_code == 201, response.text
    with session_scope() as session:  # what the worker reads and runs
        job = session.scalar(select(Job).where(Job.id == response.json()["id"]))
        config = train_config(job.hyperparameters, job.continual, seed=job.seed, device="cpu")
    trained = train_task(*build_tiny_causal_lm(), records("alpha", 8), config)
    summary = trained.retention["summary"]
    assert (summary["r"], summary["alpha"]) == (4, 8)
    # PEFT's adapters had rank 4 on each q_proj: A is r x in, B is out x r, for each of the tiny model's layers.
    hidden = trained.model.config.hidden_size
    layers = trained.model.config.num_hidden_layers
    assert summary["trainable_parameters"] == layers * 4 * (hidden + trained.model.config.num_attention_heads
                                                            * trained.model.config.head_dim)
