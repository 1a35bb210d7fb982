"""General ability as answers: short questions and instructions the base answers right, asked again of
each new version. Perplexity on reference text can improve while a model stops answering plain
questions (plain fine-tuning on a real model turns them into fragments of the tasks' formats); the
share of the base's right answers a version keeps is what a user notices.

Suite items: ``{"prompt": str, "accept": [str, ...], "kind": str}``. An answer is right when one of
``accept`` appears in it as whole words (case-insensitive), within the first ``max_new_tokens`` tokens.
"""

from __future__ import annotations

import re
import time
from typing import Any

from worker.evaluation.generation import generate_texts
from worker.evaluation.safety import suite_prompt

GENERAL_MAX_NEW_TOKENS = 24
# Changed answers kept on the version for people to read (the dashboard shows them).
EXAMPLES = 5


def _accepted(answer: str, accept: list[str]) -> bool:
    text = answer.lower()
    return any(re.search(rf"(?<![a-z0-9]){re.escape(word.lower())}(?:s|es)?(?![a-z0-9])", text) for word in accept)


def check_suite(suite: list[dict[str, Any]]) -> None:
    if not suite:
        raise ValueError("the general-ability suite is empty")
    for number, item in enumerate(suite, start=1):
        accept = item.get("accept")
        if not isinstance(accept, list) or not accept or not all(isinstance(a, str) and a.strip() for a in accept):
            raise ValueError(f"general-ability item {number}: 'accept' must be a non-empty list of strings")


def answer_suite(model: Any, tokenizer: Any, suite: list[dict[str, Any]], *, batch_size: int = 16,
                 max_new_tokens: int = GENERAL_MAX_NEW_TOKENS) -> dict[str, Any]:
    """{"right": [bool per item], "answers": [str per item], "n", "seconds"}: batched greedy answers."""
    check_suite(suite)
    started = time.perf_counter()
    prompts = [suite_prompt({"messages": [{"role": "user", "content": item["prompt"]}]}, tokenizer)
               for item in suite]
    answers = [a.strip() for a in generate_texts(model, tokenizer, prompts, max_new_tokens=max_new_tokens,
                                                 batch_size=batch_size)]
    return {"right": [_accepted(a, item["accept"]) for a, item in zip(answers, suite, strict=True)],
            "answers": answers, "n": len(suite), "seconds": time.perf_counter() - started}


def kept_against(base: dict[str, Any], version: dict[str, Any], suite: list[dict[str, Any]]) -> dict[str, Any]:
    """``kept``: the share of the base's right answers the version still gets right (None when the base
    got none right); ``accuracy``: the version's own share; ``changed``: a few answers that went wrong."""
    base_right, now_right = base["right"], version["right"]
    if len(base_right) != len(now_right):
        raise ValueError("the base was scored on another general-ability suite; score the base again")
    held = [i for i, right in enumerate(base_right) if right]
    lost = [i for i in held if not now_right[i]]
    return {
        "kept": (len(held) - len(lost)) / len(held) if held else None,
        "accuracy": sum(now_right) / len(now_right),
        "base_right": len(held), "lost": len(lost), "n": len(now_right),
        "changed": [{"prompt": suite[i]["prompt"], "base": base["answers"][i], "answer": version["answers"][i]}
                    for i in lost[:EXAMPLES]],
    }
