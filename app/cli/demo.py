"""``sculpt demo``: the whole product in a few minutes on a laptop CPU.

It builds a tiny base model in code, starts the embedded service (API + one worker), and then
acts as an ordinary HTTP client: registers the model, uploads three task datasets, trains them
one after another with live progress, and prints the lineage and the accuracy matrix.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.cli.demo_tasks import TASKS, task_jsonl
from app.cli.http_client import SculptClient
from app.cli.watch import watch

MODEL_ID = "demo-bot"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _check(response: httpx.Response) -> dict:
    if response.status_code >= 400:
        error = response.json().get("error", {})
        raise SystemExit(f"demo: {response.request.method} {response.request.url.path} failed "
                         f"({response.status_code}): {error.get('message')}")
    return response.json()


def _wait_ready(client: httpx.Client, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("demo: the service exited while starting; see its output above")
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit("demo: the service did not become ready in time")


def _follow(client: httpx.Client, job_id: str, task: str) -> dict:
    """Follow the job's event stream as `sculpt jobs watch` does, then return the finished job."""
    print(f"  {task}: {job_id}")
    with SculptClient(str(client.base_url)) as stream_client:
        watch(stream_client, job_id)
    return _check(client.get(f"/v1/fine_tuning/jobs/{job_id}"))


def _print_results(client: httpx.Client) -> None:
    versions = _check(client.get(f"/v1/models/{MODEL_ID}/versions"))["data"]
    print("\nLineage:")
    for v in versions:
        parent = f"parent v{v['parent_version']}" if v["parent_version"] else "base"
        head = "  ← head" if v["is_head"] else ""
        print(f"  v{v['version']:<3} {parent:<10} {v['status']:<9} task={v['task'] or '-'}{head}")
    record = _check(client.get(f"/v1/models/{MODEL_ID}/evaluations"))
    print("\nAccuracy matrix (rows: versions, columns: tasks; exact match on held-out examples):")
    print("  " + "version".ljust(9) + "".join(t[:14].ljust(15) for t in record["tasks"]))
    for version, row in zip(record["versions"], record["matrix"], strict=True):
        cells = "".join(("-" if s is None else f"{s:.2f}").ljust(15) for s in row)
        print(f"  v{version:<8}" + cells)
    acc, bwt = record.get("acc"), record.get("bwt")
    print(f"\nACC {acc:.3f}" if acc is not None else "\nACC n/a", end="")
    print(f"   BWT {bwt:+.3f}" if bwt is not None else "   BWT n/a")


def run_demo(home: Path) -> None:
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    base = home / "base-model"
    print(f"Building a tiny base model in code at {base} …")
    subprocess.run([sys.executable, "-m", "worker.tiny", str(base)], check=True, stdout=subprocess.DEVNULL)

    port = _free_port()
    env = {**os.environ, "SCULPT_HOME": str(home), "SCULPT_MODEL_ROOTS": str(home)}
    for key in ("SCULPT_DATABASE_URL", "SCULPT_BROKER_URL", "SCULPT_ARTIFACT_ROOT"):
        env.pop(key, None)
    log_path = home / "service.log"
    print(f"Starting the embedded service on http://127.0.0.1:{port} (its log: {log_path}) …")
    log_file = open(log_path, "wb")  # noqa: SIM115 - the worker process writes to it until it stops
    server = subprocess.Popen([sys.executable, "-m", "app.cli.main", "serve", "--port", str(port)], env=env,
                              stdout=log_file, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            _wait_ready(client, server)
            _check(client.post("/v1/models", json={"id": MODEL_ID, "base_model": str(base)}))
            print(f"Registered lineage {MODEL_ID!r} (v1 = the base).\n")
            for task in TASKS:
                upload = _check(client.post("/v1/files", data={"purpose": "fine-tune"},
                                            files={"file": (f"{task}.jsonl", task_jsonl(task))}))
                job = _check(client.post("/v1/fine_tuning/jobs", json={
                    "model": MODEL_ID, "training_file": upload["id"], "seed": 0,
                    # A tiny randomly initialised model needs a far larger step than a pretrained one.
                    "hyperparameters": {"n_epochs": 6, "batch_size": 16},
                    "continual": {"task": task, "strategy": "adaptive_svd", "learning_rate": 1e-2}}))
                job = _follow(client, job["id"], task)
                if job["status"] != "succeeded":
                    reason = (job.get("error") or {}).get("message")
                    raise SystemExit(f"demo: job {job['id']} ended {job['status']}: {reason}")
                print()
            _print_results(client)
            print(f"\nEverything is under {home}. Explore it with: SCULPT_HOME={home} sculpt serve")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log_file.close()


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    run_demo(Path(os.environ.get("SCULPT_DEMO_HOME", ".sculpt/demo")).resolve())
