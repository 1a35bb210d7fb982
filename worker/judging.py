"""Judging a trained version from its scores: the continual-learning record, each suite's gate
measures, the gates' verdict, and the job's result that reports them. Pure: the scores come in, the
measures and verdict go out; the formulas are ``app.lineages.continual_metrics``'s and the gates
``app.lineages.gates``'s."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.lineages.continual_metrics import gate_measures, summarize
from app.lineages.gates import check_gates
from app.lineages.suites import GENERAL, GENERAL_ANSWERS, SAFETY, SUITES
from worker.job_inputs import JobInputs


@dataclass
class VersionEvaluation:
    scores: dict[str, dict] = field(default_factory=dict)  # task -> {"score", "n", ...}
    suites: dict[str, dict] = field(default_factory=dict)  # suite name -> results with its measures
    summary: dict = field(default_factory=dict)  # acc, bwt, forgetting, max_forgetting, acc_drop
    verdict: dict = field(default_factory=dict)


def task_record(inputs: JobInputs, scores: dict[str, dict], cells: dict[tuple[str, int], float]) -> dict:
    """The accuracy matrix of the tasks learned, in order, then the new one: a row per version that learned
    a task (``cells``: (task, version) -> score), the new version's row last."""
    names = [t.name for t in inputs.learned] + [inputs.task_name]
    # A row keeps only tasks learned by its version: earlier cells are scores measured before training.
    learned_at = {t.name: t.version for t in inputs.learned}

    def cell(name: str, version: int) -> float | None:
        learned = learned_at.get(name)
        return cells.get((name, version)) if learned is not None and learned <= version else None

    rows = [[cell(name, t.version) for name in names] for t in inputs.learned]
    new_row = [scores[name]["score"] for name in names]
    summary = summarize([*rows, new_row])
    return {"acc": summary["acc"], "bwt": summary["bwt"],
            "forgetting": {names[i]: value for i, value in summary["forgetting"].items()},
            **gate_measures(rows, new_row)}


def evaluate(inputs: JobInputs, scores: dict[str, dict], suite_results: dict[str, dict],
             cells: dict[tuple[str, int], float], base_metrics: dict, gates: dict) -> VersionEvaluation:
    """``base_metrics``: the lineage's base version's metrics (the suites' baselines); ``gates``: the job's."""
    result = VersionEvaluation(scores=scores, summary=task_record(inputs, scores, cells))
    measured = {"max_forgetting": result.summary["max_forgetting"], "acc_drop": result.summary["acc_drop"]}
    why_not: dict[str, str] = {}
    for name, raw in suite_results.items():
        result.suites[name], measures = SUITES[name].judge(raw, base_metrics.get(name))
        measured.update(measures)
        why_not.update(result.suites[name].get("not_measured") or {})
    result.verdict = check_gates(gates, measured, why_not)
    return result


def check_head(evaluation: VersionEvaluation, base_version: int, head_version: int) -> None:
    """Fail the verdict when someone moved the head by hand since the job started: promoting the version
    would fork the lineage."""
    if head_version != base_version:
        evaluation.verdict = {**evaluation.verdict, "passed": False, "failed": [
            *evaluation.verdict.get("failed", []),
            {"gate": "head_unchanged", "threshold": base_version, "value": head_version}]}


def _general_kept(answers: dict) -> dict[str, Any]:
    """The default gate's figure for a job's result: the share of the base's right general answers the version
    still gets right, with how many it lost of how many it was asked."""
    return {"general_kept": answers.get("general_kept"), "general_lost": answers.get("lost"),
            "general_asked": answers.get("asked")}


def job_result(evaluation: VersionEvaluation, version: int, promoted: bool) -> dict[str, Any]:
    """The job's ``result``: the version, whether it was promoted, and what it was judged by."""
    return {"version": version, "promoted": promoted, "acc": evaluation.summary["acc"],
            "bwt": evaluation.summary["bwt"], "forgetting": evaluation.summary["forgetting"],
            "max_forgetting": evaluation.summary["max_forgetting"],
            "scores": {k: v["score"] for k, v in evaluation.scores.items()},
            "general": evaluation.suites.get(GENERAL.name, {}),
            **_general_kept(evaluation.suites.get(GENERAL_ANSWERS.name) or {}),
            "safety": evaluation.suites.get(SAFETY.name, {}),
            "failed_gates": evaluation.verdict.get("failed", []),
            "unmeasured_gates": evaluation.verdict.get("unmeasured", {})}
