"""Layer importance (the paper's): how much a matrix keeps its input's direction, normalised."""

from __future__ import annotations

import torch

from ...targets import Target
from .calibration import observe


def cosine_importance(model, targets: list[Target], batches: list[dict]) -> dict[str, float]:
    """Mean cosine similarity of each target's input and output on the task's calibration batches.

    Non-square matrices compare the first min(m, n) features. The result is min-max normalised across
    matrices to [0, 1], so it only ranks matrices against each other.
    """
    sums = {t.name: 0.0 for t in targets}
    counts = {t.name: 0 for t in targets}

    def record(_source: int, target: Target, x: torch.Tensor, y: torch.Tensor, _reader: Target) -> None:
        d = min(x.shape[-1], y.shape[-1])
        cos = torch.nn.functional.cosine_similarity(x[:, :d], y[:, :d], dim=-1, eps=1e-8)
        sums[target.name] += float(cos.sum())
        counts[target.name] += cos.numel()

    observe(model, targets, [batches], record)
    raw = {name: sums[name] / max(counts[name], 1) for name in sums}
    return normalise(raw)


def normalise(raw: dict[str, float]) -> dict[str, float]:
    low, high = min(raw.values()), max(raw.values())
    if high - low < 1e-12:
        # Indistinguishable matrices: treat all as fully important, the conservative choice.
        return {name: 1.0 for name in raw}
    return {name: (value - low) / (high - low) for name, value in raw.items()}
