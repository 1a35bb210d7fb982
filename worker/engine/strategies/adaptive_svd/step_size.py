"""The step relative to the weights' scale: one learning rate moves every model family alike."""

from __future__ import annotations

import statistics

from ...targets import Target

# The default learning rate was measured on SmolLM2-135M-Instruct, whose target matrices' median RMS is 0.19.
# Adam moves each weight by about the learning rate whatever its gradient's scale, so weights five times
# smaller (Gemma 3 270M's median is 0.04) take a five times larger relative step: at the same rate its
# general answers wore away where SmolLM2's held, and at a fifth of it the task was learned as well and
# they held (bench/RESULTS.md, "The step relative to the weights").
REFERENCE_WEIGHT_RMS = 0.19


def step_scale(targets: list[Target]) -> float:
    """What the learning rate is multiplied by: the target matrices' median RMS over the reference's, at most
    1, so a model with larger weights never steps further than the rate asked for."""
    rms = statistics.median(float(t.weight.detach().float().square().mean().sqrt()) for t in targets)
    return min(1.0, rms / REFERENCE_WEIGHT_RMS)
