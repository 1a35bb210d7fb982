"""Real worker processes and job helpers for the end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from app.core.enums import TERMINAL_STATUSES

# Fast recovery in tests: a dead worker's lease lapses in seconds, and the reconciler looks often.
FAST_RECOVERY = {"SCULPT_LEASE_SECONDS": "6", "SCULPT_HEARTBEAT_SECONDS": "1", "SCULPT_RECONCILE_SECONDS": "2"}


def records(task: str, n: int = 24) -> list[dict]:
    return [{"prompt": f"{task} {i}:", "completion": f" {task[0]}{i % 3}"} for i in range(n)]


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def start_worker(name: str, log_dir: Path, queues: str = "default", **env: str) -> subprocess.Popen:
    log = open(log_dir / f"worker-{name}.log", "wb")  # noqa: SIM115 - the worker process writes to it
    command = [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "--pool", "solo",
               "--concurrency", "1", "--queues", queues, "--hostname", f"{name}@%h", "--loglevel", "INFO"]
    return subprocess.Popen(command, env={**os.environ, **FAST_RECOVERY, **env}, stdout=log,
                            stderr=subprocess.STDOUT)


def stop_worker(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def upload(client, rows: list[dict]) -> str:
    response = client.post("/v1/files", data={"purpose": "fine-tune"},
                           files={"file": ("task.jsonl", jsonl(rows), "application/jsonl")})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def submit(client, model: str, file_id: str, task: str, **continual) -> str:
    body = {"model": model, "training_file": file_id, "seed": 0,
            "hyperparameters": {"n_epochs": 1, "batch_size": 4},
            "continual": {"task": task, "learning_rate": 3e-3, **continual}}
    response = client.post("/v1/fine_tuning/jobs", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def wait_for(client, job_id: str, until=lambda job: job["status"] in TERMINAL_STATUSES, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/fine_tuning/jobs/{job_id}").json()
        if until(job):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not get there in {timeout}s: {job}")


def train_two_tasks(client, base: Path, workers) -> tuple[list[dict], dict[int, dict]]:
    """Register ``bot`` on ``base``, train tasks alpha then beta with one real worker; both must
    succeed as v2 and v3. Returns the two jobs and the lineage's versions by number."""
    assert client.post("/v1/models", json={"id": "bot", "base_model": str(base)}).status_code == 201
    workers(1)
    first = submit(client, "bot", upload(client, records("alpha")), "alpha")
    second = submit(client, "bot", upload(client, records("beta")), "beta")
    jobs = [wait_for(client, first), wait_for(client, second)]
    assert [j["status"] for j in jobs] == ["succeeded", "succeeded"], jobs
    assert [j["fine_tuned_model"] for j in jobs] == ["bot:v2", "bot:v3"]
    return jobs, {v["version"]: v for v in client.get("/v1/models/bot/versions").json()["data"]}


def leftovers(artifact_root: Path) -> list[Path]:
    """Temp entries and checkpoint folders: what a failed or cancelled job must not leave."""
    root = artifact_root / "checkpoints"
    return sorted(p for p in root.rglob("*") if p.name.startswith(".tmp-")) if root.exists() else []
