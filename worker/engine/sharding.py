"""FSDP2 for models whose training state does not fit one device: parameters, gradients and AdamW state
are split by rows across the ranks, and each matrix's projection works on the rows this rank holds.

(I − U Uᵀ) ΔW mixes rows, so Uᵀ ΔW is summed over the ranks' rows with one all-reduce; ΔW (I − V Vᵀ)
acts on each row alone. This is how the production OSFT trainer (mini_trainer) projects its sharded
factors. Calibration and the SVDs run before sharding, on each rank's whole copy.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard

from .optim import ProjectedAdamW
from .subspace import MatrixProjector


class RowShardedProjector:
    """A MatrixProjector applied to the rows of its weight that this rank holds."""

    def __init__(self, projector: MatrixProjector, param):
        row_side, self.col_side = (
            (projector.in_side, projector.out_side) if projector.transposed else (projector.out_side, projector.in_side)
        )
        mesh = param.device_mesh
        self.group = mesh.get_group()
        # FSDP2 splits dim 0 as torch.chunk does: ceil(rows / ranks) a rank, the last ranks hold fewer.
        chunk = math.ceil(param.shape[0] / mesh.size())
        start = min(mesh.get_local_rank() * chunk, param.shape[0])
        rows = param.to_local().shape[0]
        self.row_basis = None if row_side is None else row_side.basis[start : start + rows].contiguous()
        self.row_complement = row_side is not None and row_side.uses_complement

    def __call__(self, delta: torch.Tensor) -> torch.Tensor:
        if self.row_basis is not None:
            inner = self.row_basis.T @ delta  # this rank's rows' share of Kᵀ ΔW
            dist.all_reduce(inner, group=self.group)
            # The side stores K itself, (I − K Kᵀ) ΔW, or its complement C, C Cᵀ ΔW: the same projection.
            delta = self.row_basis @ inner if self.row_complement else delta.addmm_(self.row_basis, inner, alpha=-1)
        if self.col_side is not None:
            delta = self.col_side.right(delta)
        return delta


def shard(prepared):
    """Shard each transformer block and the rest of the model, and rebuild the optimizer on the shards."""
    model, optimizer = prepared.model, prepared.optimizer
    names = {param: name for name, param in model.named_parameters()}
    mesh = init_device_mesh(next(model.parameters()).device.type, (dist.get_world_size(),))
    blocks = set(getattr(model, "_no_split_modules", None) or ())
    for module in model.modules():
        if type(module).__name__ in blocks:
            fully_shard(module, mesh=mesh)
    fully_shard(model, mesh=mesh)

    sharded = dict(model.named_parameters())  # fully_shard replaced every parameter; names are kept
    groups = [{**group, "params": [sharded[names[p]] for p in group["params"]]} for group in optimizer.param_groups]
    if isinstance(optimizer, ProjectedAdamW):
        projectors = {
            sharded[names[p]]: RowShardedProjector(projector, sharded[names[p]])
            for p, projector in optimizer.projectors.items()
        }
        optimizer = ProjectedAdamW(groups, projectors)
    else:
        optimizer = type(optimizer)(groups)
    return replace(prepared, model=model, optimizer=optimizer)
