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

from tests.faults.services import free_port


def inference_servers() -> list[dict]:
    from app.core.db.session import new_session
    from app.core.db.tables import InferenceServer

    with new_session() as session:
        return [{"id": row.id, "url": row.url} for row in session.query(InferenceServer)]


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
