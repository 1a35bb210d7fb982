"""General ability as answers: short questions and instructions the base answers right, asked again of
each new version. Perplexity on reference text can improve while a model stops answering plain
questions (plain fine-tuning of a real model turns them into fragments of the tasks' formats); the
share of the base's right answers a version keeps (``app.lineages.suites``) is what a user notices.

Suite items: ``{"prompt": str, "accept": [str, ...]}``, asked as a one-turn chat of a model with a chat
template, and of a base model without one as text it completes ("Question: …\nAnswer:", its first line
the answer): a base model asked in a chat form it never saw rambles, and no right answer would be counted.
An answer is right when one of ``accept`` appears in it as whole words (case-insensitive, a plural ending
allowed).
"""

from __future__ import annotations

import re
import time
from typing import Any

from worker.evaluation.generation import generate_texts
from worker.evaluation.safety import suite_prompt
from worker.prompt_completion import base_question

# Short answers keep the suite cheap: a question of this kind is answered in a few words.
GENERAL_MAX_NEW_TOKENS = 24


def _printable(text: str) -> str:
    """The answer as stored text: a model can emit control characters (NUL among them) that a JSON column
    on PostgreSQL refuses, so they go; newlines and tabs stay."""
    return "".join(ch for ch in text if ch.isprintable() or ch in "\n\t").strip()


def question_prompt(question: str, tokenizer: Any) -> str:
    """How a suite question is put to the model: as a user's turn where it has a chat template, else in the
    question-and-answer form a pretrained base completes."""
    if getattr(tokenizer, "chat_template", None):
        return suite_prompt({"messages": [{"role": "user", "content": question}]}, tokenizer)
    return base_question(question)


def answer_text(generated: str, tokenizer: Any) -> str:
    """The answer in a generation: all of it for a chat model (which ends its turn); a base model's first
    line, as it goes on to write further questions of its own."""
    text = _printable(generated)
    if getattr(tokenizer, "chat_template", None):
        return text
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def accepted(answer: str, accept: list[str]) -> bool:
    text = answer.lower()
    return any(re.search(rf"(?<![a-z0-9]){re.escape(word.lower())}(?:s|es)?(?![a-z0-9])", text) for word in accept)


def answer_suite(model: Any, tokenizer: Any, suite: list[dict[str, Any]], *, asked: list[int] | None = None,
                 batch_size: int = 16, max_new_tokens: int = GENERAL_MAX_NEW_TOKENS) -> dict[str, Any]:
    """{"accuracy", "n", "asked", "seconds", "right", "prompts", "answers"}, the lists one entry per item.

    ``asked``: the indices of the items to ask (default: all). The others' ``right`` and ``answers`` are
    None, and ``accuracy`` (over every item) is None unless all were asked.
    """
    if not suite:
        raise ValueError("the general-ability suite is empty")
    started = time.perf_counter()
    asked = list(range(len(suite))) if asked is None else asked
    prompts = [question_prompt(suite[i]["prompt"], tokenizer) for i in asked]
    answers: list[str | None] = [None] * len(suite)
    right: list[bool | None] = [None] * len(suite)
    if prompts:
        generated = generate_texts(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
        for i, text in zip(asked, generated, strict=True):
            answers[i] = answer = answer_text(text, tokenizer)
            right[i] = accepted(answer, suite[i]["accept"])
    everything = len(asked) == len(suite)
    return {"accuracy": sum(bool(ok) for ok in right) / len(suite) if everything else None, "n": len(suite),
            "asked": len(asked), "seconds": time.perf_counter() - started,
            "right": right, "prompts": [item["prompt"] for item in suite], "answers": answers}
