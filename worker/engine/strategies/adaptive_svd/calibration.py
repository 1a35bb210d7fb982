"""Running sample inputs through the model while watching each target's input and output."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from ...targets import Target

Observer = Callable[[Target, torch.Tensor, torch.Tensor], None]


@torch.no_grad()
def observe(
    model, targets: list[Target], inputs: Iterable[dict[str, torch.Tensor]], observer: Observer
) -> None:
    """Call ``observer(target, x, y)`` with float32 (tokens, features) views of every target's I/O.

    Inputs are fed one unpadded example at a time, so padding never enters the statistics.
    """

    def hook_for(target: Target):
        def hook(_module, args, output):
            x = args[0].detach().float().reshape(-1, args[0].shape[-1])
            y = output.detach().float().reshape(-1, output.shape[-1])
            observer(target, x, y)

        return hook

    handles = [t.module.register_forward_hook(hook_for(t)) for t in targets]
    was_training = model.training
    model.eval()
    try:
        for batch in inputs:
            model(**batch)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
