"""Text metrics comparing a generated answer with its reference, each returning a float in [0, 1]."""

from __future__ import annotations

import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, drop punctuation and articles, collapse whitespace."""
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(reference))


def contains(prediction: str, reference: str) -> float:
    """1 when the normalised reference appears, as whole words, in the normalised prediction."""
    needle = normalize_answer(reference)
    return float(f" {needle} " in f" {normalize_answer(prediction)} ")


def _rouge_tokens(text: str) -> list[str]:
    # The rouge-score package's tokenisation: lower case, split on anything not alphanumeric.
    return _NON_ALNUM.sub(" ", text.lower()).split()


def _lcs_length(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1: longest common token subsequence, as precision/recall harmonic mean."""
    pred, ref = _rouge_tokens(prediction), _rouge_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    lcs = _lcs_length(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


# Metrics computed on generated text; "choice" ranks labels by likelihood instead (see scoring.py).
TEXT_METRICS = {"exact_match": exact_match, "contains": contains, "rouge_l": rouge_l}
