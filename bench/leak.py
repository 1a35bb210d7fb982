"""How much of an update lands in the subspace that was meant to stay frozen (benchmarks and tests).

Both measurements train one random (out, in) matrix for ``steps`` AdamW steps on a fixed regression,
so the updates accumulate in a consistent direction, and report
max(‖U_kᵀ ΔW‖, ‖ΔW V_k‖) / ‖ΔW‖ computed in float64.
"""

from __future__ import annotations

import peft
import torch
from torch import nn

from worker.engine.strategies.adaptive_svd.optimizer import ProjectedAdamW
from worker.engine.strategies.adaptive_svd.subspace import MatrixProjector, weight_bases


def leak(delta: torch.Tensor, out_kept: torch.Tensor, in_kept: torch.Tensor) -> float:
    delta, u, v = delta.double(), out_kept.double(), in_kept.double()
    norm = delta.norm()
    return float(max((u.T @ delta).norm(), (delta @ v).norm()) / norm)


def _regression(out_features: int, in_features: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(out_features, in_features, generator=generator) * 0.02
    inputs = torch.randn(256, in_features, generator=generator)
    targets = torch.randn(256, out_features, generator=generator)
    return weight, inputs, targets


def _train(module: nn.Module, optimizer, inputs, targets, steps: int) -> None:
    for _ in range(steps):
        loss = nn.functional.mse_loss(module(inputs), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def projected_adamw_leak(shape: tuple[int, int] = (64, 64), rank: int = 32, steps: int = 200, lr: float = 1e-3,
                         weight_decay: float = 0.01, seed: int = 0) -> float:
    weight, inputs, targets = _regression(*shape, seed)
    layer = nn.Linear(shape[1], shape[0], bias=False)
    layer.weight.data.copy_(weight)
    u, v = weight_bases(weight, rank)
    projectors = {layer.weight: MatrixProjector(u, v)}
    _train(
        layer,
        ProjectedAdamW(layer.parameters(), projectors, lr=lr, weight_decay=weight_decay),
        inputs,
        targets,
        steps,
    )
    return leak(layer.weight.detach() - weight, u, v)


def peft_osf_leak(shape: tuple[int, int] = (64, 64), rank: int = 32, steps: int = 200, lr: float = 1e-3,
                  weight_decay: float = 0.01, seed: int = 0) -> float:
    """The same measurement for PEFT's OSF with ``rank`` frozen singular directions."""
    weight, inputs, targets = _regression(*shape, seed)
    holder = nn.Sequential(nn.Linear(shape[1], shape[0], bias=False))
    holder[0].weight.data.copy_(weight)
    model = peft.get_peft_model(holder, peft.OSFConfig(effective_rank=rank, target_modules=["0"]))
    trainable = [p for p in model.parameters() if p.requires_grad]
    _train(model, torch.optim.AdamW(trainable, lr=lr, weight_decay=weight_decay), inputs, targets, steps)
    merged = model.merge_and_unload()[0].weight.detach()
    u, v = weight_bases(weight, rank)
    return leak(merged - weight, u, v)


def projector_leak(projector: MatrixProjector, delta: torch.Tensor) -> float:
    """The same figure for a trained matrix, against the kept bases a projector was built from.

    ‖K Kᵀ ΔW‖ = ‖Kᵀ ΔW‖, and K Kᵀ ΔW = ΔW − (I − K Kᵀ) ΔW, so the projector's own sides measure it.
    """
    delta = delta.T if projector.transposed else delta
    norm = float(delta.double().norm())
    parts = []
    if projector.out_side is not None:
        parts.append(float((delta - projector.out_side.left(delta.clone())).double().norm()))
    if projector.in_side is not None:
        parts.append(float((delta - projector.in_side.right(delta.clone())).double().norm()))
    return max(parts, default=0.0) / norm
