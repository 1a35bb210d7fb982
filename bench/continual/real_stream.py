"""The real-model benchmark's stream (``--model smollm2-135m``): the chat tasks of
``app.cli.chat_tasks``, each split into training items and held-out items never trained on."""

from __future__ import annotations

from app.cli.chat_tasks import REAL_TASKS, distinct_records
from bench.continual.streams import Task


def real_task(name: str, seed: int, train: int, held_out: int) -> Task:
    """Task ``name`` with ``train`` + ``held_out`` distinct items drawn with ``seed``; no held-out item
    is also a training item."""
    items = distinct_records(name, seed, train + held_out)
    return Task(name, items[:train], items[train:])


def real_stream(seed: int, train: int, held_out: int) -> list[Task]:
    return [real_task(name, seed, train, held_out) for name in REAL_TASKS]
