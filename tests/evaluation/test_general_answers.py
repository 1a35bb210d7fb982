"""General ability as answers: what counts as a right answer, and the share of the base's right answers
a version keeps, with the answers it lost shown beside the base's."""

from __future__ import annotations

from app.lineages.suites import GENERAL_ANSWERS, default_records, general_answers_shape
from worker.evaluation.general_answers import accepted


def test_an_answer_is_right_when_an_accepted_word_appears_as_a_word():
    assert accepted("The capital of France is Paris.", ["Paris"])
    assert accepted("Cats say meow", ["cat"])  # a plural ending is allowed
    assert not accepted('{"label": "billing"}', ["Paris"])
    assert not accepted("Parisian cafes", ["Paris"])  # not part of another word
    assert accepted("H2O", ["h2o"])


def test_kept_is_the_share_of_the_bases_right_answers_still_right():
    base = {"right": [True, True, False, True], "answers": ["Paris", "Tokyo", "?", "4"],
            "prompts": ["p0", "p1", "p2", "p3"]}
    version = {"right": [True, False, True, False], "answers": ["Paris", '{"a": 1}', "ok", "five"],
               "prompts": base["prompts"]}
    result, measures = GENERAL_ANSWERS.judge(version, base)
    assert measures == {"general_kept": 1 / 3}
    assert result["lost"] == 2 and result["base_right"] == 3
    assert result["changed"] == [{"prompt": "p1", "base": "Tokyo", "answer": '{"a": 1}'},
                                 {"prompt": "p3", "base": "4", "answer": "five"}]
    # The base compared with itself keeps everything; a base scored on another suite gives no figure.
    assert GENERAL_ANSWERS.gate_measures(base, base) == {"general_kept": 1.0}
    assert GENERAL_ANSWERS.gate_measures(version, {"right": [True], "answers": ["x"]}) == {"general_kept": None}


def test_the_built_in_suite_has_over_a_hundred_well_formed_items_of_every_kind():
    items = default_records(GENERAL_ANSWERS)
    assert len(items) >= 100
    assert all(general_answers_shape(item) == ("suite", None) for item in items)
    assert {item["kind"] for item in items} == {"fact", "arithmetic", "instruction", "prose"}
    assert general_answers_shape({"prompt": "Hi", "accept": []})[0] is None
