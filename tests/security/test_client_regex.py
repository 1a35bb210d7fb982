"""A client's regex (continual.retention.target_regex) cannot hold a worker: it runs in linear time, and a
pattern that needs backtracking features is refused when the job is created."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.api.helpers import assert_error, create_job, register, upload_ok

# Python's re takes time exponential in the name's length on this: hours on one module name.
CATASTROPHIC = "^(.|.)*Z"


@pytest.mark.parametrize("pattern", [r"(q)\1", r"q(?=_proj)", r"(?<!k)_proj"])
def test_a_pattern_that_needs_backtracking_is_refused_at_creation(sqlite_client, base_model_dir, pattern):
    register(sqlite_client, "m", base_model_dir)
    error = assert_error(create_job(sqlite_client, "m", upload_ok(sqlite_client),
                                    continual={"retention": {"target_regex": pattern}}), 422,
                         param="continual.retention.target_regex")
    assert "linear time" in error["message"]
    assert sqlite_client.get("/v1/fine_tuning/jobs").json()["data"] == []


def test_a_catastrophic_pattern_is_accepted_and_matched_at_once(sqlite_client, base_model_dir):
    register(sqlite_client, "m", base_model_dir)
    response = create_job(sqlite_client, "m", upload_ok(sqlite_client),
                          continual={"retention": {"target_regex": CATASTROPHIC}})
    assert response.status_code == 201, response.text
    # What the worker runs with it, in a process of its own so a backtracking engine can be stopped.
    program = f"""
from torch import nn
from worker.engine.config import SettingsError
from worker.engine.targets import find_targets
model = nn.Module()
model.add_module("a_module_whose_path_is_long_enough_0", nn.Linear(2, 2))
try:
    find_targets(model, {CATASTROPHIC!r})
except SettingsError as exc:
    print(exc)
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert "matches none of the model's linear layers" in done.stdout, done.stderr[-2000:]
