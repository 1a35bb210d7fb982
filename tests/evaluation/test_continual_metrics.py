"""ACC, BWT, forgetting and FWT against numbers worked out by hand."""

import pytest

from app.lineages.continual_metrics import gate_measures, row_acc, summarize

# Row t: scores after learning task t (None: task not learned yet, so not measured).
MATRIX = [
    [0.8, None, None],
    [0.6, 0.9, None],
    [0.7, 0.5, 1.0],
]


def test_summary_matches_hand_computed_matrix():
    summary = summarize(MATRIX)
    # ACC = (0.7 + 0.5 + 1.0) / 3
    assert summary["acc"] == pytest.approx(2.2 / 3)
    # BWT = ((0.7 - 0.8) + (0.5 - 0.9)) / 2
    assert summary["bwt"] == pytest.approx(-0.25)
    # f_0 = max(0.8, 0.6) - 0.7; f_1 = 0.9 - 0.5
    assert summary["forgetting"] == pytest.approx({0: 0.1, 1: 0.4})
    assert summary["fwt"] is None


def test_forward_transfer_compares_score_before_training_with_the_base():
    before = [0.1, 0.3, 0.2]  # on the version each task was trained from
    base = [0.1, 0.1, 0.4]  # on the lineage's base model
    # Task 0 is trained from the base itself; FWT = ((0.3 - 0.1) + (0.2 - 0.4)) / 2
    assert summarize(MATRIX, before=before, base=base)["fwt"] == pytest.approx(0.0)
    assert summarize(MATRIX, before=[None, 0.5, None], base=base)["fwt"] == pytest.approx(0.4)
    assert summarize(MATRIX, before=before)["fwt"] is None


def test_forward_transfer_reads_scores_before_learning_from_the_matrix():
    # The worker stores task i's pre-training score in the row of the version it trains from.
    matrix = [[0.8, 0.3, None], [0.6, 0.9, 0.6], [0.7, 0.5, 1.0]]
    summary = summarize(matrix, base=[0.8, 0.1, 0.4])
    # FWT = ((0.3 - 0.1) + (0.6 - 0.4)) / 2; the extra cells change neither ACC, BWT nor forgetting
    assert summary["fwt"] == pytest.approx(0.2)
    assert {k: summary[k] for k in ("acc", "bwt")} == pytest.approx({"acc": 2.2 / 3, "bwt": -0.25})
    assert summary["forgetting"] == pytest.approx({0: 0.1, 1: 0.4})


def test_single_task_and_empty_matrix():
    assert summarize([[0.4]]) == {"acc": 0.4, "bwt": 0.0, "forgetting": {}, "fwt": None}
    assert summarize([]) == {"acc": None, "bwt": None, "forgetting": {}, "fwt": None}


def test_gate_measures_against_previous_rows():
    measures = gate_measures(MATRIX[:2], MATRIX[2])
    # drops: task 0: max(0.8, 0.6) - 0.7 = 0.1; task 1: 0.9 - 0.5 = 0.4; task 2 has no earlier score
    assert measures["max_forgetting"] == pytest.approx(0.4)
    # ACC of the head's row (0.75) minus the new row's (2.2 / 3)
    assert measures["acc_drop"] == pytest.approx(0.75 - 2.2 / 3)
    assert row_acc([None, 0.5]) == 0.5


def test_gate_measures_ignore_scores_measured_before_learning():
    # The head's row also holds the new task's pre-training score (0.9): neither a forgetting
    # of the new task nor part of the head's ACC.
    measures = gate_measures([[0.8, 0.9]], [0.7, 0.3])
    assert measures["max_forgetting"] == pytest.approx(0.1)
    assert measures["acc_drop"] == pytest.approx(0.8 - 0.5)


def test_gate_measures_with_nothing_to_compare():
    assert gate_measures([], [0.5]) == {"max_forgetting": None, "acc_drop": None}
    # A task scored better than ever before gives negative forgetting.
    improved = gate_measures([[0.2]], [0.6, 0.1])
    assert improved["max_forgetting"] == pytest.approx(-0.4)
    assert improved["acc_drop"] == pytest.approx(0.2 - 0.35)
