"""Three small built-in tasks for the demo: short lookups a tiny model learns in seconds on a
CPU, each asked in several phrasings, generated from a seed."""

from __future__ import annotations

import json
import random

TASKS: dict[str, tuple[list[str], dict[str, str]]] = {
    "colors-fr": (["{k} in French:", "French for {k}:", "say {k} in French:"],
                  {"red": "rouge", "blue": "bleu", "green": "vert", "black": "noir", "white": "blanc",
                   "yellow": "jaune", "pink": "rose", "grey": "gris"}),
    "digits": (["{k} as a digit:", "write {k} as a number:", "digit for {k}:"],
               {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
                "eight": "8", "nine": "9"}),
    "animal-sounds": (["the {k} says", "what does a {k} say?", "sound of a {k}:"],
                      {"dog": "woof", "cat": "meow", "cow": "moo", "duck": "quack", "sheep": "baa",
                       "owl": "hoot", "bee": "buzz", "lion": "roar"}),
}


def task_records(name: str, n: int = 200, seed: int = 0) -> list[dict]:
    templates, answers = TASKS[name]
    rng = random.Random(f"{name}:{seed}")
    keys = sorted(answers)
    records = []
    for _ in range(n):
        key = rng.choice(keys)
        records.append({"prompt": rng.choice(templates).format(k=key) + " ", "completion": answers[key]})
    return records


def task_jsonl(name: str, n: int = 200, seed: int = 0) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in task_records(name, n, seed)).encode()
