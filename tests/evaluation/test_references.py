"""The suites' built-in data (app/data) loads, is well formed, and every suite can be run."""

from app.lineages.suites import GENERAL, SAFETY, SUITES, default_records


def test_reference_texts_are_a_few_dozen_sentences():
    texts = [r["text"] for r in default_records(GENERAL)]
    assert 24 <= len(texts) <= 100
    assert all(isinstance(t, str) and t.strip() for t in texts)


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
