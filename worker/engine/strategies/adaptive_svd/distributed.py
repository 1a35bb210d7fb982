"""adaptive_svd across several processes: every rank projects with rank 0's kept bases, and under FSDP2
each matrix's projection works on the rows this rank holds. Preparation splits its decompositions across
the ranks (``bases_from_owners``).

(I − U Uᵀ) ΔW mixes rows, so Uᵀ ΔW is summed over the ranks' rows with one all-reduce; ΔW (I − V Vᵀ)
acts on each row alone. This is how the production OSFT trainer (mini_trainer) projects its sharded
factors. Calibration runs before sharding, on each rank's whole copy.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist

from .subspace import MatrixProjector, distinct_sides


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


def share_bases(projectors) -> None:
    """Send rank 0's kept bases to every rank.

    Every rank computed them from the same weights and data; sending rank 0's anyway means a last-bit
    difference between two devices' SVDs can never make ranks project differently.
    """
    sides = distinct_sides(projectors)
    shapes = [tuple(side.basis.shape) for side in sides]
    received = [shapes]
    dist.broadcast_object_list(received, src=0)
    if received[0] != shapes:
        raise RuntimeError("the training processes chose kept subspaces of different sizes from the same model")
    for side in sides:
        dist.broadcast(side.basis, src=0)


def bases_from_owners(names: list[str], mine: dict[str, torch.Tensor], owner: dict[str, int],
                      device) -> dict[str, torch.Tensor]:
    """Every matrix's basis on every rank, each sent by the rank that computed it (``owner``); ``mine``:
    this rank's."""
    shapes: list[dict] = [{} for _ in range(dist.get_world_size())]
    dist.all_gather_object(shapes, {name: tuple(basis.shape) for name, basis in mine.items()})
    shape = {name: size for part in shapes for name, size in part.items()}
    received = {}
    for name in names:
        basis = mine[name].contiguous() if name in mine else torch.empty(shape[name], device=device)
        dist.broadcast(basis, src=owner[name])
        received[name] = basis
    return received
