"""Evaluation suites, worker half: one module per suite registers, under the suite's name in
``app.lineages.suites``, how to run it on a model. Every module of this package is imported, so
adding a suite's runner is adding its module."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any, Protocol

from app.lineages.suites import SUITES


class RunSuite(Protocol):
    def __call__(self, model: Any, tokenizer: Any, records: list[dict], baseline: dict | None) -> dict[str, Any]:
        """The suite's results on the model (numbers, JSON-safe); raise JobFailed when they cannot count.
        ``baseline``: the suite's results on the lineage's base, None when the model is the base or unscored."""
        ...


RUNNERS: dict[str, RunSuite] = {}


def runs(name: str) -> Callable[[RunSuite], RunSuite]:
    """Register the decorated function as the runner of suite ``name``."""
    def register(run: RunSuite) -> RunSuite:
        if name not in SUITES:
            raise ValueError(f"no suite named {name!r} in app.lineages.suites; known: {sorted(SUITES)}")
        RUNNERS[name] = run
        return run
    return register


def runner(name: str) -> RunSuite:
    if name not in RUNNERS:
        raise LookupError(f"suite {name!r} has no runner in worker.evaluation.suites")
    return RUNNERS[name]


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
