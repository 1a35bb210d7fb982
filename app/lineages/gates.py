"""Promotion gates: thresholds a new version must meet to become the lineage's head.

Pure Python, shared by the API (validation of what users set) and the worker (the verdict).
Each gate compares one measured value against its threshold; a value that was not measured
(None) skips its gate rather than failing it, and the verdict says which were skipped and, where a suite
said why its measure could not be taken, why (``unmeasured``): a gate that cannot judge is never silent.
"""

from __future__ import annotations

from typing import Any

from app.lineages.suites import SUITES, Gate

# The default forgetting gate: a version that loses more than this share of any earlier task's held-out
# answers is kept but not promoted. It tolerates a few held-out items of noise (16-20 items a task: 0.05-0.06
# each) and rejects the erasure plain fine-tuning does (bench/RESULTS.md, "Default max_forgetting").
DEFAULT_MAX_FORGETTING = 0.25

# The task record's gates; each evaluation suite adds its own (app.lineages.suites).
_TASK_GATES = (
    Gate("max_forgetting", "max_forgetting", True, lambda v: -1.0 <= v <= 1.0, "between -1 and 1",
         default=DEFAULT_MAX_FORGETTING,
         description="Largest forgetting allowed on any earlier task (-1 to 1)."),
    Gate("max_acc_drop", "acc_drop", True, lambda v: -1.0 <= v <= 1.0, "between -1 and 1",
         description="Largest drop of ACC vs. the base version (-1 to 1)."),
)


def gates_known() -> dict[str, Gate]:
    """Every gate by name: the task record's, then each registered suite's."""
    return {g.name: g for g in (*_TASK_GATES, *(g for suite in SUITES.values() for g in suite.gates))}



def default_gates() -> dict[str, float]:
    """The gates of a lineage registered without naming any: each gate's declared default."""
    return {name: gate.default for name, gate in gates_known().items() if gate.default is not None}


class GateError(ValueError):
    """A gate's name or threshold is wrong; ``gate`` names it, so an error can point at that field."""

    def __init__(self, message: str, gate: str | None = None) -> None:
        super().__init__(message)
        self.gate = gate


def validate_gates(gates: dict[str, Any]) -> dict[str, float]:
    """Return the gates with float thresholds; raise ValueError naming the first bad key or value.

    A threshold of None means "not set" and is dropped.
    """
    if not isinstance(gates, dict):
        raise ValueError(f"gates must be an object, got {type(gates).__name__}")
    clean: dict[str, float] = {}
    known = gates_known()
    for name, threshold in gates.items():
        if name not in known:
            raise GateError(f"unknown gate {name!r}; known gates: {', '.join(known)}", name)
        if threshold is None:
            continue
        # bool is an int subclass; True as a threshold is a mistake, not 1.0.
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise GateError(f"gate {name!r} must be a number, got {threshold!r}", name)
        gate = known[name]
        # NaN fails every comparison, so it is rejected here too.
        if not gate.in_range(float(threshold)):
            raise GateError(f"gate {name!r} must be {gate.wording}, got {threshold!r}", name)
        clean[name] = float(threshold)
    return clean


def check_gates(gates: dict[str, Any], measured: dict[str, float | None],
                why_not_measured: dict[str, str] | None = None) -> dict[str, Any]:
    """Judge measured values against the gates.

    ``measured``: each gate's measure by key (max_forgetting, acc_drop, and the suites' measures);
    ``why_not_measured``: measure -> why it is None, where a suite said.
    Returns {"passed", "failed": [{"gate", "threshold", "value"}], "checked": [names], "skipped": [names],
    "unmeasured": {skipped gate: why}}.
    """
    failed: list[dict[str, Any]] = []
    checked: list[str] = []
    skipped: list[str] = []
    known = gates_known()
    for name, threshold in validate_gates(gates).items():
        value, at_most = measured.get(known[name].measure), known[name].at_most
        if value is None:
            skipped.append(name)
            continue
        checked.append(name)
        ok = value <= threshold if at_most else value >= threshold
        if not ok:
            failed.append({"gate": name, "threshold": threshold, "value": value})
    reasons = why_not_measured or {}
    unmeasured = {name: reasons[known[name].measure] for name in skipped if known[name].measure in reasons}
    return {"passed": not failed, "failed": failed, "checked": checked, "skipped": skipped, "unmeasured": unmeasured}
