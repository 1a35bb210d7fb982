import random

import pytest
import torch


def fact_records(tag: str, count: int, seed: int) -> list[dict]:
    """A memorisation task: ``count`` random key -> value facts, prefixed by the task's tag."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [
        {
            "prompt": f"{tag} {''.join(rng.choices(letters, k=4))}=",
            "completion": "".join(rng.choices(letters, k=3)),
        }
        for _ in range(count)
    ]


@pytest.fixture(autouse=True)
def _few_threads():
    # The test machine is shared; two threads keep runs fast without starving neighbours.
    torch.set_num_threads(2)
