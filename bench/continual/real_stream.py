"""The real-model benchmark's streams (``--model smollm2-135m`` or ``gemma3-270m``): the chat tasks of
``app.cli.chat_tasks`` (``short``: its four tasks; ``long``: twelve), each split into training items and
held-out items never trained on. A model with a chat template learns them as chat records; a pretrained
base without one as prompt/completion records ("…\\nAnswer:" and the answer), the form a base model is
fine-tuned in."""

from __future__ import annotations

from app.cli.chat_tasks import LONG_TASKS, REAL_TASKS, distinct_records
from bench.continual.streams import Task


def completion_form(record: dict) -> dict:
    """A one-turn chat record as prompt/completion text."""
    user, assistant = record["messages"][0]["content"], record["messages"][-1]["content"]
    return {"prompt": f"{user}\nAnswer:", "completion": f" {assistant}"}


def real_task(name: str, seed: int, train: int, held_out: int, chat: bool = True) -> Task:
    """Task ``name`` with ``train`` + ``held_out`` distinct items drawn with ``seed``; no held-out item
    is also a training item."""
    items = distinct_records(name, seed, train + held_out)
    items = items if chat else [completion_form(item) for item in items]
    return Task(name, items[:train], items[train:])


REAL_STREAMS = {"short": REAL_TASKS, "long": LONG_TASKS}


def real_stream(seed: int, train: int, held_out: int, chat: bool = True, name: str = "short") -> list[Task]:
    return [real_task(task, seed, train, held_out, chat) for task in REAL_STREAMS[name]]
