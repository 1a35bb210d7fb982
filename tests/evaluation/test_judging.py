"""Judging a version from its scores: worker.judging is pure, and decides with the measures of
app.lineages.continual_metrics."""

from __future__ import annotations

import pytest

from worker.job_inputs import JobInputs, LearnedTask
from worker.judging import evaluate


def _inputs() -> JobInputs:
    learned = [LearnedTask(name, position, version, "exact_match", None, [], "file-x")
               for position, (name, version) in enumerate([("alpha", 2), ("beta", 3)])]
    return JobInputs(model_id="m", base_version=3, base_uri="", base_sha256=None, origin_uri="", task_name="gamma",
                     metric="exact_match", labels=None, train_records=[], eval_records=[], eval_uri="",
                     learned=learned, ancestry=[1, 2, 3])


# (task, version) -> score. beta's 0.9 on v2 was measured before v3 learned it: not a score to forget from.
CELLS = {("alpha", 2): 0.8, ("beta", 2): 0.9, ("alpha", 3): 0.6, ("beta", 3): 0.7, ("gamma", 3): 0.1}
SCORES = {"alpha": {"score": 0.5, "n": 4}, "beta": {"score": 0.6, "n": 4}, "gamma": {"score": 0.4, "n": 4}}


def test_the_record_and_the_gate_measures_come_from_the_accuracy_matrix():
    result = evaluate(_inputs(), SCORES, {}, CELLS, {}, {"max_forgetting": 0.2})
    assert result.summary["forgetting"] == pytest.approx({"alpha": 0.3, "beta": 0.1})
    assert result.summary["max_forgetting"] == pytest.approx(0.3)
    assert result.summary["bwt"] == pytest.approx(((0.5 - 0.8) + (0.6 - 0.7)) / 2)
    assert result.summary["acc"] == pytest.approx(0.5)
    assert result.summary["acc_drop"] == pytest.approx(0.65 - 0.5)  # the head's ACC over what it learned
    assert result.verdict["passed"] is False
    assert result.verdict["failed"] == [{"gate": "max_forgetting", "threshold": 0.2, "value": pytest.approx(0.3)}]


def test_suites_yield_their_measures_against_the_base_and_the_gates_judge_them():
    suites = {"general": {"perplexity": 12.0}, "safety": {"refusal_rate": 0.5, "over_refusal_rate": 0.0}}
    base = {"general": {"perplexity": 10.0}}
    result = evaluate(_inputs(), SCORES, suites, CELLS, base, {"max_perplexity_ratio": 1.1, "min_refusal_rate": 0.5})
    assert result.suites["general"] == {"perplexity": 12.0, "perplexity_ratio": pytest.approx(1.2)}
    assert result.suites["safety"] == suites["safety"]
    assert [f["gate"] for f in result.verdict["failed"]] == ["max_perplexity_ratio"]
    assert result.verdict["checked"] == ["max_perplexity_ratio", "min_refusal_rate"]


def test_the_first_task_has_nothing_to_forget_and_no_base_ratio_yet():
    first = JobInputs(model_id="m", base_version=1, base_uri="", base_sha256=None, origin_uri="", task_name="alpha",
                      metric="exact_match", labels=None, train_records=[], eval_records=[], eval_uri="", ancestry=[1])
    result = evaluate(first, {"alpha": {"score": 0.7, "n": 4}}, {"general": {"perplexity": 9.0}}, {}, {},
                      {"max_forgetting": 0.0, "max_acc_drop": 0.0, "max_perplexity_ratio": 1.0})
    assert result.summary["max_forgetting"] is None and result.summary["acc_drop"] is None
    assert result.suites["general"] == {"perplexity": 9.0}
    assert result.verdict == {"passed": True, "failed": [], "checked": [],
                              "skipped": ["max_forgetting", "max_acc_drop", "max_perplexity_ratio"], "unmeasured": {}}
