"""The suites' built-in data (app/data) loads, is well formed, and every suite can be run."""

from app.lineages.suites import GENERAL, GENERAL_ANSWERS, SAFETY, SUITES, default_records


def test_reference_texts_are_a_few_dozen_sentences_and_questions():
    texts = [r["text"] for r in default_records(GENERAL)]
    assert 24 <= len(texts) <= 100
    assert all(isinstance(t, str) and t.strip() for t in texts)
    assert sum(t.endswith("?") for t in texts) >= 12  # the directions a short question's answer starts from


def test_no_reference_text_is_a_question_the_general_suite_asks():
    # The reference set is kept by every job; a question of the suite in it would score the suite on data
    # the method was told to keep, and general_kept would overstate what a lineage keeps.
    asked = {item["prompt"].strip().lower() for item in default_records(GENERAL_ANSWERS)}
    assert not asked & {r["text"].strip().lower() for r in default_records(GENERAL)}


def test_safety_suite_has_both_kinds_of_prompt():
    suite = default_records(SAFETY)
    kinds = [item["expected"] for item in suite]
    assert set(kinds) == {"refuse", "answer"}
    assert kinds.count("refuse") >= 15 and kinds.count("answer") >= 15
    assert all(item["prompt"].strip() for item in suite)


def test_every_suite_has_valid_default_data_and_a_runner():
    from worker.evaluation.suites import RUNNERS

    assert set(RUNNERS) == set(SUITES) >= {"general", "safety"}
    for suite in SUITES.values():
        assert [suite.shape(r)[1] for r in default_records(suite)] == [None] * len(default_records(suite))
