"""The same stream through a running Sculpt service: the product's figures, not only the library's.

Per strategy and seed: register a lineage whose base is the harness's base model (saved to a folder
the service may read: inside its SCULPT_MODEL_ROOTS), with the general task's held-out texts as its
reference set (a real model: the service's built-in suites), and no gates, so every strategy's chain
is its own whatever a gate would say; then per task upload the train split (``fine-tune``) and the
held-out split (as the job's ``validation_file``), create the job with the ``continual`` options, and
wait for it to finish before the next. At the end read ``GET /v1/models/{id}/evaluations`` of the last
version: the matrix, ACC, BWT, FWT and forgetting are the service's own; each version's metrics give
``general_kept``, the perplexity ratio and the general suite's seconds, as the service measured them.
``general_drift`` is None here.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from pathlib import Path

import httpx

from app.core.enums import TERMINAL_STATUSES
from app.lineages.suites import GENERAL, GENERAL_ANSWERS
from bench.continual.report import mean_of
from bench.continual.strategies import TrainSettings, kept_room
from bench.continual.streams import Task

# The harness's strategies as a job's continual options: (the service's strategy, what else it sets).
API_STRATEGIES = {"adaptive_svd": ("adaptive_svd", {}), "adaptive_svd_fixed": ("adaptive_svd", {"mode": "fixed"}),
                  "adaptive_svd_replay": ("adaptive_svd", {"replay": True}), "full": ("full", {}),
                  "lora": ("lora", {}), "replay": ("full", {"replay": True})}


class ApiError(RuntimeError):
    """The service refused a request or a job did not succeed."""


def client_for(url: str, api_key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=60)


def _json(response: httpx.Response) -> dict:
    if response.status_code >= 400:
        raise ApiError(f"{response.request.method} {response.request.url.path} -> {response.status_code}: "
                       f"{response.text[:500]}")
    return response.json()


def save_base(model, tokenizer, folder: Path) -> None:
    """Save the harness's base where the service will read it, with nothing left of an earlier save.

    A file the new model does not write stays otherwise, and changes how the service reads the folder:
    Gemma's base saved over SmolLM2's folder kept SmolLM2's ``chat_template.jinja``, and the service
    asked the base model in chat form. ``holds_other_files`` refuses a folder that is not a saved model.
    """
    if folder.exists():
        shutil.rmtree(folder)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def holds_other_files(folder: Path) -> bool:
    """Whether ``folder`` holds files that are not a saved model (``save_base`` would delete them)."""
    return folder.is_dir() and any(folder.iterdir()) and not (folder / "config.json").is_file()


def _upload(client: httpx.Client, records: list[dict], purpose: str, filename: str) -> str:
    body = "".join(json.dumps(r) + "\n" for r in records).encode()
    files = {"file": (filename, body, "application/jsonl")}
    return _json(client.post("/v1/files", data={"purpose": purpose}, files=files))["id"]


def _continual(strategy: str, task: str, settings: TrainSettings) -> dict:
    service_strategy, extra = API_STRATEGIES[strategy]
    options: dict = {"task": task, "strategy": service_strategy, "learning_rate": settings.lr}
    retention = {**settings.retention, **({"mode": extra["mode"]} if "mode" in extra else {})}
    if retention and service_strategy == "adaptive_svd":
        options["retention"] = retention
    if extra.get("replay"):
        options["replay"] = settings.replay_per_task
    return options


def _wait(client: httpx.Client, job_id: str, timeout: float, poll: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = _json(client.get(f"/v1/fine_tuning/jobs/{job_id}"))
        if job["status"] in TERMINAL_STATUSES:
            return job
        if time.monotonic() > deadline:
            raise ApiError(f"job {job_id} did not finish in {timeout:.0f}s (status {job['status']})")
        time.sleep(poll)


def run_stream_via_api(client: httpx.Client, strategy: str, base_dir: Path, general: Task, tasks: list[Task],
                       settings: TrainSettings, seed: int, *, job_timeout: float = 1800,
                       poll: float = 1.0) -> dict:
    if strategy not in API_STRATEGIES:
        raise ApiError(f"strategy {strategy!r} cannot run through the service; choose from {list(API_STRATEGIES)}")
    model_id = f"bench-{strategy.replace('_', '-')}-s{seed}-{secrets.token_hex(3)}"
    lineage = {"id": model_id, "base_model": str(Path(base_dir).resolve()), "gates": {}}
    if general.held_out:
        reference = [{"text": r["prompt"] + r["completion"]} for r in general.held_out]
        lineage["reference_file"] = _upload(client, reference, GENERAL.purpose, "general-reference.jsonl")
    started = time.monotonic()
    _json(client.post("/v1/models", json=lineage))
    versions, job_seconds = [], 0.0
    for task in tasks:
        train = _upload(client, task.train, "fine-tune", f"{task.name}-train.jsonl")
        held = _upload(client, task.held_out, "fine-tune", f"{task.name}-held-out.jsonl")
        job = _json(client.post("/v1/fine_tuning/jobs", json={
            "model": model_id, "training_file": train, "validation_file": held, "seed": seed,
            "hyperparameters": {"n_epochs": settings.epochs, "batch_size": settings.batch_size},
            "continual": _continual(strategy, task.name, settings)}))
        job = _wait(client, job["id"], job_timeout, poll)
        if job["status"] != "succeeded":
            raise ApiError(f"job {job['id']} for task {task.name} ended {job['status']}: {job.get('error')}")
        versions.append(job["result"]["version"])
        job_seconds += job["finished_at"] - job["created_at"]
    record = _json(client.get(f"/v1/models/{model_id}/evaluations", params={"version": versions[-1]}))
    objects = [_json(client.get(f"/v1/models/{model_id}/versions/{v}")) for v in versions]
    run = from_evaluations(record, [t.name for t in tasks], versions, seed,
                           wall_seconds=time.monotonic() - started, job_seconds=job_seconds, model_id=model_id)
    return {**run, **general_figures([o["metrics"] for o in objects]),
            "kept_room": [kept_room(o["retention"]) for o in objects]}


def general_figures(metrics: list[dict]) -> dict:
    """What the service measured of general ability on each version (``metrics``: one per task, in order)."""
    answers = [m.get(GENERAL_ANSWERS.name) or {} for m in metrics]
    after = {"general_kept": [a.get("general_kept") for a in answers],
             "perplexity_ratio": [(m.get(GENERAL.name) or {}).get("perplexity_ratio") for m in metrics],
             "general_seconds": [a.get("seconds") for a in answers]}
    return {"general_after_each_task": after, "general_kept": after["general_kept"][-1],
            "perplexity_ratio": after["perplexity_ratio"][-1],
            "general_seconds": mean_of(s for s in after["general_seconds"] if s is not None)}


def from_evaluations(record: dict, task_names: list[str], versions: list[int], seed: int, *,
                     wall_seconds: float, job_seconds: float, model_id: str) -> dict:
    """One run in the harness's shape, from the service's evaluations record."""
    columns = [record["tasks"].index(name) for name in task_names]
    rows = dict(zip(record["versions"], record["matrix"], strict=True))
    matrix = [[rows.get(v, [None] * len(record["tasks"]))[c] for c in columns] for v in versions]
    forgetting = {name: f for name, f in record["forgetting"].items() if name in task_names}
    return {
        "seed": seed,
        "model": model_id,
        "versions": versions,
        "matrix": matrix,
        "acc": record["acc"],
        "bwt": record["bwt"],
        "fwt": record["fwt"],
        "forgetting": mean_of(forgetting.values()),
        "forgetting_per_task": forgetting,
        "learning_accuracy": mean_of(matrix[i][i] for i in range(len(matrix))),
        "general_drift": None,
        "general": record["general"],
        "train_seconds": job_seconds,
        "wall_seconds": wall_seconds,
        "peak_memory_mb": None,
    }
