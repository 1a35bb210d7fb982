"""Shared fixtures for the evaluation tests."""

from __future__ import annotations

import pytest

from worker.tiny import build_tiny_causal_lm, build_tiny_t5


@pytest.fixture
def tiny_causal():
    return build_tiny_causal_lm(seed=0)


@pytest.fixture
def tiny_t5():
    return build_tiny_t5(seed=0)
