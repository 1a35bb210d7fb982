"""Three small built-in tasks for the demo, generated from a seed: rules a tiny model can learn
in seconds on a CPU, with held-out examples it has never seen."""

from __future__ import annotations

import json
import random
import string

TASKS = {
    "first-letter": ("first letter of {w}:", lambda w: w[0]),
    "last-letter": ("last letter of {w}:", lambda w: w[-1]),
    "upper-first": ("shout the first letter of {w}:", lambda w: w[0].upper()),
}


def _words(rng: random.Random, n: int) -> list[str]:
    return ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 7))) for _ in range(n)]


def task_records(name: str, n: int = 240, seed: int = 0) -> list[dict]:
    template, answer = TASKS[name]
    rng = random.Random(f"{name}:{seed}")
    return [{"prompt": template.format(w=w) + " ", "completion": answer(w)} for w in _words(rng, n)]


def task_jsonl(name: str, n: int = 240, seed: int = 0) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in task_records(name, n, seed)).encode()
