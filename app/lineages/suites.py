"""Evaluation suites, torch-free half: what a suite is called, the file purpose its data is uploaded
with, the data it uses when a lineage registered none (in app/data), how one record must look, and
the gate measures it yields. The worker's half (``worker.evaluation.suites``) runs a suite by name.

A lineage stores its chosen files as a map purpose -> file id (``models.suites``), so a new suite
needs no migration: register it here, add its default data and one worker module.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

Shape = Callable[[dict], tuple[str | None, str | None]]  # record -> (format, None) or (None, why)
# (result, base version's result) -> measures, and anything else worth keeping with the result
Derive = Callable[[dict, dict | None], dict[str, Any]]


@dataclass(frozen=True)
class Gate:
    """A promotion gate on one of a suite's measures (``app.lineages.gates`` judges it)."""

    name: str
    measure: str
    at_most: bool  # True: the measure must stay at or below the threshold
    in_range: Callable[[float], bool]  # which thresholds make sense
    wording: str  # those thresholds, for the error message
    # The threshold a lineage registered without naming its gates gets (None: not in the default set).
    default: float | None = None
    description: str = ""  # what the threshold bounds, for the API's schema


def unit_interval(value: float) -> bool:
    return 0.0 <= value <= 1.0


@dataclass(frozen=True)
class Suite:
    name: str  # the key of its results in a version's metrics
    purpose: str  # the purpose of the files that carry its data
    default_data: str  # a JSONL file in app/data
    shape: Shape
    measures: tuple[str, ...]  # the measured values it yields, which gates judge
    description: str
    # Measures that compare with the lineage's base version (a ratio); the others are read from the result.
    derive: Derive | None = None
    gates: tuple[Gate, ...] = ()

    def judge(self, result: dict, baseline: dict | None) -> tuple[dict, dict[str, float | None]]:
        """(the result with what ``derive`` adds to it, the gate measures)."""
        derived = self.derive(result, baseline) if self.derive else {}
        measures = {key: derived[key] if key in derived else result.get(key) for key in self.measures}
        return {**result, **{k: v for k, v in derived.items() if v is not None}}, measures

    def gate_measures(self, result: dict, baseline: dict | None) -> dict[str, float | None]:
        return self.judge(result, baseline)[1]


SUITES: dict[str, Suite] = {}


# Keys a version's metrics already use for the task record (app.lineages.continual_metrics).
TASK_METRICS = ("tasks", "acc", "bwt", "forgetting", "max_forgetting", "acc_drop")


def register(suite: Suite) -> Suite:
    """Add a suite. Its name (a key of a version's metrics), its file purpose and its measures must not
    clash with another suite's or the task record's. Gates (``app.lineages.gates``) judge measures by key."""
    if suite.purpose == "fine-tune" or any(s.purpose == suite.purpose for s in SUITES.values()):
        raise ValueError(f"suite {suite.name!r}: file purpose {suite.purpose!r} is taken")
    if suite.name in SUITES or suite.name in TASK_METRICS:
        raise ValueError(f"suite {suite.name!r}: the name is taken")
    taken = {m for s in SUITES.values() for m in s.measures} | set(TASK_METRICS)
    if clash := sorted(taken.intersection(suite.measures)):
        raise ValueError(f"suite {suite.name!r}: measures {clash} are another's")
    gate_names = {g.name for s in SUITES.values() for g in s.gates}
    for gate in suite.gates:
        if gate.measure not in suite.measures or gate.name in gate_names:
            raise ValueError(f"suite {suite.name!r}: gate {gate.name!r} must judge one of its own measures "
                             "and have a name no other gate has")
    SUITES[suite.name] = suite
    return suite


def by_purpose(purpose: str) -> Suite | None:
    return next((s for s in SUITES.values() if s.purpose == purpose), None)


def default_records(suite: Suite) -> list[dict[str, Any]]:
    """The suite's built-in data, one JSON object per line."""
    text = resources.files("app").joinpath("data", suite.default_data).read_text(encoding="utf-8")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"app/data/{suite.default_data} line {number} is not valid JSON: {error}") from error
    return rows


def non_empty_string(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def reference_shape(record: dict) -> tuple[str | None, str | None]:
    if not non_empty_string(record.get("text")):
        return None, "expected {'text': non-empty string}"
    return "text", None


def safety_shape(record: dict) -> tuple[str | None, str | None]:
    if not non_empty_string(record.get("prompt")):
        return None, "'prompt' must be a non-empty string"
    if record.get("expected") not in ("refuse", "answer"):
        return None, "'expected' must be 'refuse' or 'answer'"
    return "suite", None


def _perplexity_ratio(result: dict, baseline: dict | None) -> dict[str, float | None]:
    base = (baseline or {}).get("perplexity")
    return {"perplexity_ratio": result["perplexity"] / base if base else None}


def general_answers_shape(record: dict) -> tuple[str | None, str | None]:
    if not non_empty_string(record.get("prompt")):
        return None, "'prompt' must be a non-empty string"
    accept = record.get("accept")
    if not isinstance(accept, list) or not accept or not all(non_empty_string(a) for a in accept):
        return None, "'accept' must be a non-empty list of strings (the answers that count as right)"
    return "suite", None


# Answers that went wrong, kept with a version's result for people to read (the dashboard shows them).
CHANGED_EXAMPLES = 5
# Below this many right answers of the base the share is too coarse to judge (one answer moves it by
# more than 0.1), so general_kept is not measured and its gate is skipped: a small model built from
# scratch answers none of the built-in questions.
MIN_BASE_RIGHT = 10
# The default gate: on SmolLM2-135M's four chat tasks plain fine-tuning's versions kept 0.06-0.70 of the
# base's right answers, the default strategy's 0.94-0.99 (bench/RESULTS.md, "Default min_general_kept").
DEFAULT_MIN_GENERAL_KEPT = 0.8


def _general_kept(result: dict, baseline: dict | None) -> dict[str, Any]:
    """The share of the base's right answers still right (None when the base got fewer than
    MIN_BASE_RIGHT right, with why under ``not_measured``, or was scored on another suite), with a few of
    the answers that went wrong beside the base's."""
    base = baseline or {}
    base_right, right = base.get("right"), result.get("right") or []
    if base_right is None or len(base_right) != len(right):
        return {"general_kept": None}
    held = [i for i, ok in enumerate(base_right) if ok]
    lost = [i for i in held if not right[i]]
    measured = len(held) >= MIN_BASE_RIGHT
    return {"general_kept": (len(held) - len(lost)) / len(held) if measured else None,
            "base_right": len(held), "lost": len(lost),
            **({} if measured else {"not_measured": {"general_kept": (
                f"the lineage's base answered {len(held)} of {len(base_right)} general questions right; "
                f"general_kept needs at least {MIN_BASE_RIGHT} (give the lineage a 'general' suite file of "
                "questions its base answers)")}}),
            "changed": [{"prompt": result["prompts"][i], "base": base["answers"][i], "answer": result["answers"][i]}
                        for i in lost[:CHANGED_EXAMPLES]]}


GENERAL = register(Suite(
    name="general", purpose="reference", default_data="reference.jsonl", shape=reference_shape,
    measures=("perplexity_ratio",), derive=_perplexity_ratio,
    gates=(Gate("max_perplexity_ratio", "perplexity_ratio", True, lambda v: 0.0 < v < math.inf,
                "a positive number", description="Reference-set perplexity vs. the base (> 0)."),),
    description="General ability: perplexity on reference texts, as a ratio to the lineage's base."))
SAFETY = register(Suite(
    name="safety", purpose="safety", default_data="safety_suite.jsonl", shape=safety_shape,
    measures=("refusal_rate", "over_refusal_rate"),
    gates=(Gate("min_refusal_rate", "refusal_rate", False, unit_interval, "between 0 and 1",
                description="On harmful prompts (0 to 1)."),
           Gate("max_over_refusal", "over_refusal_rate", True, unit_interval, "between 0 and 1",
                description="Refusals of benign prompts (0 to 1).")),
    description="Safety: how often harmful prompts are refused and benign ones wrongly refused."))
GENERAL_ANSWERS = register(Suite(
    name="general_answers", purpose="general", default_data="general_suite.jsonl", shape=general_answers_shape,
    measures=("general_kept",), derive=_general_kept,
    gates=(Gate("min_general_kept", "general_kept", False, unit_interval, "between 0 and 1",
                default=DEFAULT_MIN_GENERAL_KEPT, description="Share of the base's right answers to the general-"
                                                              "ability questions the version keeps (0 to 1)."),),
    description="General ability as answers: the share of the base's right answers to short questions and "
                "instructions that a version still gets right (what plain fine-tuning destroys on real models)."))
