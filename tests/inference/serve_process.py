"""``sculpt serve`` (API, embedded worker and inference process) as a real process on the test's
environment, for end-to-end tests through the openai client."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import update

from tests.faults.services import free_port

PROMPT = "alpha 1:"


def inference_servers() -> list[dict]:
    from app.core.db.session import new_session
    from app.core.db.tables import InferenceServer

    with new_session() as session:
        return [{"id": row.id, "url": row.url, "token": row.token} for row in session.query(InferenceServer)]


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_registered(process: subprocess.Popen, log_path: Path, url: str | None = None) -> None:
    deadline = time.monotonic() + 300  # importing torch on a busy machine can take a while
    while not (inference_servers() and (url is None or _healthy(url))):
        if time.monotonic() > deadline or process.poll() is not None:
            raise AssertionError(f"the process did not come up; see {log_path}")
        time.sleep(0.3)


def _end(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def inference_process(log_path: Path) -> Iterator[None]:
    """``python -m worker.inference`` (what ``sculpt inference`` runs), registered before this yields."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "worker.inference"], env=os.environ.copy(), stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        _wait_registered(process, log_path)
        yield
    finally:
        _end(process)


@contextmanager
def sculpt_serve(log_path: Path, *args: str) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "app.cli.main", "serve", "--port", str(port), *args],
                                   env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_registered(process, log_path, url)  # the API is up well before the inference process registers
        yield url
    finally:
        _end(process)


def two_versions(live_url: str, tmp_path) -> None:
    """Lineage ``bot``: v1 the base, v2 (the head) a differently seeded model that 'learned' alpha."""
    from app.core.db.session import session_scope
    from app.core.db.tables import Evaluation, Model, ModelVersion, Task
    from worker.tiny import build_tiny_causal_lm

    base, other = tmp_path / "base", tmp_path / "v2"
    build_tiny_causal_lm(base, seed=0)
    build_tiny_causal_lm(other, seed=1)
    httpx.post(f"{live_url}/v1/models", json={"id": "bot", "base_model": str(base)}).raise_for_status()
    with session_scope() as session:
        session.add(ModelVersion(model_id="bot", version=2, parent_version=1, checkpoint_uri=str(other),
                                 task_name="alpha", strategy="adaptive_svd"))
        session.add(Task(model_id="bot", name="alpha", position=0, version=2, training_file="file-x",
                         eval_uri="unused"))
        session.add(Evaluation(model_id="bot", version=2, task_name="alpha", metric="exact_match", score=0.75, n=4))
        session.add(Evaluation(model_id="bot", version=1, task_name="alpha", metric="exact_match", score=0.0, n=4))
        session.execute(update(Model).where(Model.id == "bot").values(head_version=2))


def greedy(live_url: str, model: str) -> str:
    reply = httpx.post(f"{live_url}/v1/chat/completions", timeout=120, json={
        "model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 24, "temperature": 0})
    reply.raise_for_status()
    return reply.json()["choices"][0]["message"]["content"]
