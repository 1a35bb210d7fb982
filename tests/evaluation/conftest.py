"""Shared fixtures for the evaluation tests: tiny models, one of them taught known answers."""

from __future__ import annotations

import pytest
import torch

from tests.evaluation.teaching import TAUGHT, teach
from worker.tiny import build_tiny_causal_lm, build_tiny_t5


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread():
    # These models are tiny, and the test machine is shared: extra threads only spin and wait.
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="package")
def taught_causal(one_torch_thread):
    model, tokenizer = build_tiny_causal_lm(seed=0)
    final_loss = teach(model, tokenizer, list(TAUGHT.items()), steps=80, lr=6e-3)
    assert final_loss < 0.05, f"the tiny model did not learn its answers (loss {final_loss})"
    return model, tokenizer


@pytest.fixture
def tiny_causal():
    return build_tiny_causal_lm(seed=0)


@pytest.fixture
def tiny_t5():
    # Seed 1 gives non-empty greedy outputs for most prompts, so comparisons are not vacuous.
    return build_tiny_t5(seed=1)
