"""Exact match normalisation, contains and ROUGE-L on known values."""

import pytest

from worker.evaluation.text_metrics import contains, exact_match, normalize_answer, rouge_l


@pytest.mark.parametrize(
    ("prediction", "reference"),
    [("The Eiffel Tower!", "eiffel tower"), ("  an   apple. ", "Apple"), ("Paris,France", "parisfrance"),
     ("A cat", "the cat")],
)
def test_exact_match_ignores_case_punctuation_articles_and_spaces(prediction, reference):
    assert exact_match(prediction, reference) == 1.0


@pytest.mark.parametrize(("prediction", "reference"), [("Paris", "London"), ("the", "then"), ("cat", "cats")])
def test_exact_match_rejects_different_answers(prediction, reference):
    assert exact_match(prediction, reference) == 0.0


def test_normalize_answer_keeps_articles_inside_words():
    assert normalize_answer("The Theatre, and an ant.") == "theatre and ant"


def test_contains_matches_whole_words_only():
    assert contains("I think it is Paris, France.", "paris") == 1.0
    assert contains("Parisian food", "Paris") == 0.0


def test_rouge_l_known_values():
    # LCS "the cat on the mat" = 5 of 6 tokens each side: P = R = F = 5/6.
    assert rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    # LCS "a c" = 2; P = 2/3, R = 2/4, F = 2PR/(P+R) = 4/7.
    assert rouge_l("a b c", "a x c y") == pytest.approx(4 / 7)
    assert rouge_l("Same words.", "same WORDS") == 1.0
    assert rouge_l("nothing shared", "other text") == 0.0
