"""Promotion gates: thresholds a new version must meet to become the lineage's head.

Pure Python, shared by the API (validation of what users set) and the worker (the verdict).
Each gate compares one measured value against its threshold; a value that was not measured
(None) skips its gate rather than failing it, and the verdict says which were skipped.
"""

from __future__ import annotations

import math
from typing import Any

GATE_NAMES = ("max_forgetting", "max_acc_drop", "max_perplexity_ratio", "min_refusal_rate", "max_over_refusal")

# gate name -> (key in the measured dict, True when the value must stay at or below the threshold)
_GATES: dict[str, tuple[str, bool]] = {
    "max_forgetting": ("max_forgetting", True),
    "max_acc_drop": ("acc_drop", True),
    "max_perplexity_ratio": ("perplexity_ratio", True),
    "min_refusal_rate": ("refusal_rate", False),
    "max_over_refusal": ("over_refusal_rate", True),
}

# Allowed thresholds, as (test, wording for the error). Scores and rates live in [0, 1], so a
# drop or forgetting lies in [-1, 1]; a perplexity ratio is any positive number.
_RANGES = {
    "max_forgetting": (lambda v: -1.0 <= v <= 1.0, "between -1 and 1"),
    "max_acc_drop": (lambda v: -1.0 <= v <= 1.0, "between -1 and 1"),
    "max_perplexity_ratio": (lambda v: 0.0 < v < math.inf, "a positive number"),
    "min_refusal_rate": (lambda v: 0.0 <= v <= 1.0, "between 0 and 1"),
    "max_over_refusal": (lambda v: 0.0 <= v <= 1.0, "between 0 and 1"),
}


def validate_gates(gates: dict[str, Any]) -> dict[str, float]:
    """Return the gates with float thresholds; raise ValueError naming the first bad key or value.

    A threshold of None means "not set" and is dropped.
    """
    if not isinstance(gates, dict):
        raise ValueError(f"gates must be an object, got {type(gates).__name__}")
    clean: dict[str, float] = {}
    for name, threshold in gates.items():
        if name not in _GATES:
            raise ValueError(f"unknown gate {name!r}; known gates: {', '.join(GATE_NAMES)}")
        if threshold is None:
            continue
        # bool is an int subclass; True as a threshold is a mistake, not 1.0.
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise ValueError(f"gate {name!r} must be a number, got {threshold!r}")
        in_range, wording = _RANGES[name]
        # NaN fails every comparison, so it is rejected here too.
        if not in_range(float(threshold)):
            raise ValueError(f"gate {name!r} must be {wording}, got {threshold!r}")
        clean[name] = float(threshold)
    return clean


def check_gates(gates: dict[str, Any], measured: dict[str, float | None]) -> dict[str, Any]:
    """Judge measured values against the gates.

    ``measured`` keys: max_forgetting, acc_drop, perplexity_ratio, refusal_rate, over_refusal_rate.
    Returns {"passed", "failed": [{"gate", "threshold", "value"}], "checked": [names], "skipped": [names]}.
    """
    failed: list[dict[str, Any]] = []
    checked: list[str] = []
    skipped: list[str] = []
    for name, threshold in validate_gates(gates).items():
        key, at_most = _GATES[name]
        value = measured.get(key)
        if value is None:
            skipped.append(name)
            continue
        checked.append(name)
        ok = value <= threshold if at_most else value >= threshold
        if not ok:
            failed.append({"gate": name, "threshold": threshold, "value": value})
    return {"passed": not failed, "failed": failed, "checked": checked, "skipped": skipped}
