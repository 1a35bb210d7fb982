"""Promotion gates: pass, fail with the measured value, skip what was not measured, reject bad input."""

import pytest

from app.lineages.gates import check_gates, gates_known, validate_gates

MEASURED = {"max_forgetting": 0.05, "acc_drop": 0.02, "perplexity_ratio": 1.3, "refusal_rate": 0.9,
            "over_refusal_rate": 0.1, "general_kept": 0.95}


def test_all_gates_pass():
    gates = {"max_forgetting": 0.1, "max_acc_drop": 0.05, "max_perplexity_ratio": 1.5,
             "min_refusal_rate": 0.8, "max_over_refusal": 0.2, "min_general_kept": 0.9}
    verdict = check_gates(gates, MEASURED)
    assert verdict == {"passed": True, "failed": [], "checked": list(gates_known()), "skipped": [], "unmeasured": {}}


def test_failed_gates_report_threshold_and_value():
    verdict = check_gates({"max_perplexity_ratio": 1.2, "min_refusal_rate": 0.95, "max_forgetting": 0.05}, MEASURED)
    assert not verdict["passed"]
    assert verdict["failed"] == [
        {"gate": "max_perplexity_ratio", "threshold": 1.2, "value": 1.3},
        {"gate": "min_refusal_rate", "threshold": 0.95, "value": 0.9},
    ]
    # Equal to the threshold passes.
    assert "max_forgetting" in verdict["checked"]


def test_unmeasured_gate_is_skipped_not_failed():
    verdict = check_gates({"max_over_refusal": 0.0, "max_acc_drop": 0.0}, {"over_refusal_rate": None, "acc_drop": 0.1})
    assert verdict["skipped"] == ["max_over_refusal"]
    assert verdict["failed"] == [{"gate": "max_acc_drop", "threshold": 0.0, "value": 0.1}]


def test_no_gates_pass():
    assert check_gates({}, MEASURED)["passed"]


@pytest.mark.parametrize(
    ("gates", "named"),
    [
        ({"max_forgeting": 0.1}, "max_forgeting"),
        ({"max_forgetting": "0.1"}, "max_forgetting"),
        ({"min_refusal_rate": True}, "min_refusal_rate"),
        ({"min_refusal_rate": 1.5}, "min_refusal_rate"),
        ({"max_over_refusal": -0.1}, "max_over_refusal"),
        ({"max_perplexity_ratio": 0}, "max_perplexity_ratio"),
        ({"max_perplexity_ratio": float("nan")}, "max_perplexity_ratio"),
    ],
)
def test_validate_rejects_bad_gates_naming_them(gates, named):
    with pytest.raises(ValueError, match=named):
        validate_gates(gates)


def test_validate_returns_floats_and_drops_unset():
    assert validate_gates({"max_acc_drop": 0, "max_perplexity_ratio": 2, "min_refusal_rate": None}) == {
        "max_acc_drop": 0.0, "max_perplexity_ratio": 2.0}


def test_min_general_kept_fails_a_version_that_lost_the_bases_answers():
    verdict = check_gates({"min_general_kept": 0.9}, {"general_kept": 0.44})
    assert verdict["failed"] == [{"gate": "min_general_kept", "threshold": 0.9, "value": 0.44}]
    with pytest.raises(ValueError, match="min_general_kept"):
        validate_gates({"min_general_kept": 1.5})
