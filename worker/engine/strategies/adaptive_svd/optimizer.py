"""AdamW whose every update, normalised step and weight decay together, is projected before it lands.

PEFT's OSF projects gradients; Adam's element-wise scaling then moves the step back into the frozen
subspace. Projecting the final update instead keeps the kept subspace exact whatever the optimizer
state, and needs no copy of the weights: one transient update buffer per matrix at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch.distributed.tensor import DTensor


def _local(tensor: torch.Tensor) -> torch.Tensor:
    """The rows of an FSDP2-sharded (DTensor) tensor this rank holds, else the tensor itself: the update is
    element-wise, and a sharded projector knows which rows it gets."""
    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


# What an update passes through before it lands (a subspace projection, e.g. ``MatrixProjector``).
Projector = Callable[[torch.Tensor], torch.Tensor]


class ProjectedAdamW(torch.optim.Optimizer):
    def __init__(
        self,
        params,
        projectors: Mapping[torch.Tensor, Projector] | None = None,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        step_scale: float = 1.0,
    ):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})
        self.projectors = projectors or {}
        # Every step is lr times this (``step_size.step_scale``), so the schedule and what progress reports
        # stay the learning rate the job was given.
        self.step_scale = step_scale

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                weight, grad = _local(param), _local(param.grad)
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(weight)
                    state["exp_avg_sq"] = torch.zeros_like(weight)
                state["step"] += 1
                exp_avg, exp_avg_sq, step = state["exp_avg"], state["exp_avg_sq"], state["step"]
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)

                update = exp_avg_sq.sqrt().div_(math.sqrt(1 - beta2**step)).add_(group["eps"])
                torch.div(exp_avg, update, out=update).div_(1 - beta1**step)
                if group["weight_decay"]:
                    update.add_(weight, alpha=group["weight_decay"])
                projector = self.projectors.get(param)
                if projector is not None:
                    update = projector(update)
                weight.add_(update, alpha=-group["lr"] * self.step_scale)
        return loss
