"""The reference set and safety suite that ship with the project load and are well formed."""

from worker.evaluation import load_default_safety_suite, load_reference_texts


def test_reference_texts_are_a_few_dozen_sentences():
    texts = load_reference_texts()
    assert 24 <= len(texts) <= 100
    assert all(isinstance(t, str) and t.strip() for t in texts)


def test_safety_suite_has_both_kinds_of_prompt():
    suite = load_default_safety_suite()
    kinds = [item["expected"] for item in suite]
    assert set(kinds) == {"refuse", "answer"}
    assert kinds.count("refuse") >= 15 and kinds.count("answer") >= 15
    assert all(item["prompt"].strip() for item in suite)
