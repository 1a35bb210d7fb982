"""General ability as answers: what counts as a right answer, and the share of the base's right answers
a version keeps, with the answers it lost shown beside the base's."""

from __future__ import annotations

from app.lineages.gates import check_gates, default_gates
from app.lineages.suites import GENERAL_ANSWERS, MIN_BASE_RIGHT, default_records, general_answers_shape
from worker.evaluation.general_answers import accepted


def test_an_answer_is_right_when_an_accepted_word_appears_as_a_word():
    assert accepted("The capital of France is Paris.", ["Paris"])
    assert accepted("Cats say meow", ["cat"])  # a plural ending is allowed
    assert not accepted('{"label": "billing"}', ["Paris"])
    assert not accepted("Parisian cafes", ["Paris"])  # not part of another word
    assert accepted("H2O", ["h2o"])


def _scored(right: list[bool], answers: list[str]) -> dict:
    return {"right": right, "answers": answers, "prompts": [f"p{i}" for i in range(len(right))]}


def test_kept_is_the_share_of_the_bases_right_answers_still_right():
    # Twelve questions, the base right on all but the last; the version loses two and gains the last.
    base = _scored([True] * 11 + [False], ["Paris", "Tokyo", *[f"a{i}" for i in range(2, 11)], "?"])
    version = _scored([True, False, True, False, *[True] * 7, True],
                      ["Paris", '{"a": 1}', "a2", "five", *[f"a{i}" for i in range(4, 11)], "ok"])
    result, measures = GENERAL_ANSWERS.judge(version, base)
    assert measures == {"general_kept": 9 / 11}
    assert result["lost"] == 2 and result["base_right"] == 11
    assert result["changed"] == [{"prompt": "p1", "base": "Tokyo", "answer": '{"a": 1}'},
                                 {"prompt": "p3", "base": "a3", "answer": "five"}]
    # The base compared with itself keeps everything; a base scored on another suite gives no figure.
    assert GENERAL_ANSWERS.gate_measures(base, base) == {"general_kept": 1.0}
    assert GENERAL_ANSWERS.gate_measures(version, {"right": [True], "answers": ["x"]}) == {"general_kept": None}


def test_a_base_with_too_few_right_answers_gives_no_figure_and_the_gate_is_skipped():
    base = _scored([True] * (MIN_BASE_RIGHT - 1) + [False] * 3, ["x"] * (MIN_BASE_RIGHT + 2))
    version = _scored([False] * (MIN_BASE_RIGHT + 2), ["y"] * (MIN_BASE_RIGHT + 2))
    judged, measures = GENERAL_ANSWERS.judge(version, base)
    assert measures == {"general_kept": None}
    verdict = check_gates(default_gates(), measures, judged["not_measured"])
    assert verdict["passed"] and "min_general_kept" in verdict["skipped"]
    # The verdict says why the gate could not judge.
    assert f"{MIN_BASE_RIGHT - 1} of {MIN_BASE_RIGHT + 2}" in verdict["unmeasured"]["min_general_kept"]
    # With as many right answers as the minimum, losing them all fails the default gate.
    base = _scored([True] * MIN_BASE_RIGHT, ["x"] * MIN_BASE_RIGHT)
    measures = GENERAL_ANSWERS.gate_measures(_scored([False] * MIN_BASE_RIGHT, ["y"] * MIN_BASE_RIGHT), base)
    assert measures == {"general_kept": 0.0} and not check_gates(default_gates(), measures)["passed"]


def test_a_later_version_is_asked_only_the_questions_the_base_answered_right(tiny_causal):
    from worker.evaluation.suites import runner

    model, tokenizer = tiny_causal
    items = default_records(GENERAL_ANSWERS)[:6]
    everything = runner("general_answers")(model, tokenizer, items, None)  # the base: every item
    assert everything["asked"] == 6 and None not in everything["answers"]
    baseline = {**everything, "right": [True, False, True, False, False, True]}
    later = runner("general_answers")(model, tokenizer, items, baseline)
    assert later["asked"] == 3 and later["accuracy"] is None
    assert later["answers"] == [everything["answers"][0], None, everything["answers"][2], None, None,
                                everything["answers"][5]]
    assert [later["right"][i] for i in (1, 3, 4)] == [None, None, None]


def test_the_built_in_suite_has_over_a_hundred_well_formed_items_of_every_kind():
    items = default_records(GENERAL_ANSWERS)
    assert len(items) >= 100
    assert all(general_answers_shape(item) == ("suite", None) for item in items)
    assert {item["kind"] for item in items} == {"fact", "arithmetic", "instruction", "prose"}
    assert general_answers_shape({"prompt": "Hi", "accept": []})[0] is None
