"""The harness on a real pretrained model (``--model smollm2-135m``): its base, its general records and
how its general ability is checked, with the service's own suites and definitions.

- General records (what replay mixes in and what ``adaptive_svd`` keeps as its reference prior): the
  service's default reference set (app/data/reference.jsonl), as a lineage registered without one gets.
- General ability after each task: the ``general_answers`` suite (``general_kept``: the share of the
  base's right answers still right, the gate ``min_general_kept`` judges) and reference perplexity
  (``perplexity_ratio``, the gate ``max_perplexity_ratio``), both scored as the service scores them.
  ``items`` takes an evenly spread part of the 120 questions, to keep a run of every strategy near an
  hour on two CPU cores; the suite's kinds (facts, arithmetic, instructions, prose) are kept in proportion.
"""

from __future__ import annotations

import time

from app.lineages.suites import GENERAL, GENERAL_ANSWERS, default_records
from bench.continual.streams import Task
from bench.real_model import MODELS, model_folder
from worker.evaluation.general_answers import answer_suite
from worker.evaluation.perplexity import perplexity


def load_base(name: str):
    """(model, tokenizer) of a real model of ``bench.real_model.MODELS``, fetched with pip if needed."""
    from worker.engine import load_model_and_tokenizer

    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; one of {', '.join(MODELS)}")
    model, tokenizer, _kind = load_model_and_tokenizer(model_folder(name))
    return model, tokenizer


def reference_texts() -> list[str]:
    return [record["text"] for record in default_records(GENERAL)]


def general_records() -> Task:
    """The reference texts as records (all completion); nothing is held out: the suites score general ability."""
    return Task("general", [{"prompt": "", "completion": text} for text in reference_texts()], [])


def suite_items(items: int | None) -> list[dict]:
    suite = default_records(GENERAL_ANSWERS)
    if items is None or items >= len(suite):
        return suite
    return [suite[i * len(suite) // items] for i in range(items)]


class RealGeneralCheck:
    """``general_kept`` and ``perplexity_ratio`` of a model against the base's answers and perplexity."""

    def __init__(self, base, tokenizer, items: int | None):
        self.items, self.texts = suite_items(items), reference_texts()
        self.base = self._measure(base, tokenizer)

    def _measure(self, model, tokenizer) -> dict:
        started = time.perf_counter()
        answers = answer_suite(model, tokenizer, self.items)
        return {"answers": answers, "perplexity": perplexity(model, tokenizer, self.texts),
                "seconds": time.perf_counter() - started}

    def __call__(self, model, tokenizer) -> dict:
        measured = self._measure(model, tokenizer)
        kept = GENERAL_ANSWERS.gate_measures(measured["answers"], self.base["answers"])["general_kept"]
        ratio = GENERAL.gate_measures({"perplexity": measured["perplexity"]},
                                      {"perplexity": self.base["perplexity"]})["perplexity_ratio"]
        return {"score": measured["answers"]["accuracy"], "general_kept": kept, "perplexity_ratio": ratio,
                "general_seconds": measured["seconds"]}

    def summary(self) -> dict:
        """The base's figures, for the results' ``base``."""
        answers = self.base["answers"]
        return {"general": answers["accuracy"], "general_items": answers["n"],
                "base_right": sum(answers["right"]), "perplexity": self.base["perplexity"],
                "general_seconds": self.base["seconds"]}

