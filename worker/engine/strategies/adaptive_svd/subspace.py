"""Kept subspaces of a matrix and the projection that keeps updates off them.

The input side (R^n) and the output side (R^m) each get an orthonormal kept basis. An update is
confined to (I - U Uᵀ) ΔW (I - V Vᵀ). Each side stores either its kept basis or its complement,
whichever has fewer columns, since both give the same projector and cost scales with columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Directions of a candidate basis with less than this much length left after removing the existing
# basis are treated as already covered.
NOVELTY_TOLERANCE = 1e-4


def weight_bases(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``rank`` left and right singular vectors of an (out, in) matrix, from a float32 thin SVD."""
    u, _, vh = torch.linalg.svd(weight.float(), full_matrices=False)
    return u[:, :rank].contiguous(), vh[:rank].T.contiguous()


def energy_rank(eigenvalues: torch.Tensor, energy: float) -> int:
    """Smallest r whose leading eigenvalues hold ``energy`` of the total (eigenvalues descending)."""
    total = eigenvalues.sum()
    if total <= 0:
        return 0
    cumulative = torch.cumsum(eigenvalues.double(), 0) / total
    threshold = torch.tensor(energy, dtype=cumulative.dtype, device=cumulative.device)
    return int(torch.searchsorted(cumulative, threshold)) + 1


@dataclass
class Spectrum:
    """Eigenvalues (descending, float32) of an input's second moment, and eigenvectors for the leading ones."""

    values: torch.Tensor  # (r,)
    vectors: torch.Tensor  # (n, c), c <= r: the directions whose eigenvalues float32 tells from zero


class Moments:
    """The uncentred second moment xᵀx / N of one input's rows, the subspace old inputs live in, gathered a
    batch of rows at a time.

    While there are fewer rows N than features n it holds the rows themselves (less than the n×n sum) and
    decomposes their N×N Gram matrix, which has the covariance's nonzero eigenvalues: the kept basis cannot
    have more directions than there are rows. Decompositions are float32; exactness needs float64 only in
    the projector's final re-orthonormalisation (``SideProjector``).
    """

    def __init__(self, width: int):
        self.width, self.count = width, 0
        self.rows: list[torch.Tensor] = []
        self.sum: torch.Tensor | None = None

    def add(self, x: torch.Tensor) -> None:
        self.count += x.shape[0]
        if self.sum is None and self.count <= self.width:
            self.rows.append(x)
            return
        if self.sum is None:
            self.sum = torch.zeros(self.width, self.width, device=x.device)
            for rows in self.rows:
                self.sum.addmm_(rows.T, rows)
            self.rows = []
        self.sum.addmm_(x.T, x)

    def spectrum(self) -> Spectrum:
        if self.sum is not None:
            values, vectors = torch.linalg.eigh(self.sum / self.count)
            return Spectrum(values.flip(0).clamp_min(0), vectors.flip(1))
        rows = torch.cat(self.rows)
        values, u = torch.linalg.eigh(rows @ rows.T / self.count)
        values, u = values.flip(0).clamp_min(0), u.flip(1)
        # XᵀX (Xᵀu) = N λ Xᵀu: each Xᵀu is an eigenvector, normalised by its own length, which float32 gets
        # right where λ is too small for sqrt(N λ) to be; below float32's resolution of λ it is noise.
        real = int((values > values[0] * torch.finfo(values.dtype).eps).sum())
        vectors = rows.T @ u[:, :real]
        return Spectrum(values, vectors / vectors.norm(dim=0))


def activation_basis(spectrum: Spectrum, energy: float, cap: int) -> torch.Tensor:
    """Leading eigenvectors of an input's second moment up to ``energy``, at most ``cap`` of them."""
    rank = min(cap, energy_rank(spectrum.values, energy), spectrum.vectors.shape[1])
    return spectrum.vectors[:, :rank].contiguous()


def union(first: torch.Tensor, second: torch.Tensor, cap: int) -> torch.Tensor:
    """Orthonormal basis of span(first) + span(second), ``first`` kept whole, at most ``cap`` columns.

    The part of ``second`` not already in ``first`` is added most-novel direction first. Its directions are
    the eigenvectors of the residual's small Gram matrix, in float64, not an SVD of the residual: an SVD
    here failed to converge on the twelve-task stream (bench/RESULTS.md; the inputs that made it fail were
    not kept), and the float64 eigh of a few hundred columns' Gram went through the same stream.
    """
    if second.shape[1] == 0 or first.shape[1] >= cap:
        return first[:, :cap].contiguous()
    residual = (second - first @ (first.T @ second)).double()
    lengths, directions = torch.linalg.eigh(residual.T @ residual)  # ascending
    novel = lengths > NOVELTY_TOLERANCE**2
    added = (residual @ (directions[:, novel] / lengths[novel].sqrt())).flip(1).to(first.dtype)
    return torch.cat([first, added], dim=1)[:, :cap].contiguous()


class SideProjector:
    """Projects onto the orthogonal complement of a kept basis, on one side of a matrix."""

    def __init__(self, kept: torch.Tensor):
        dim, rank = kept.shape
        self.dim, self.rank = dim, rank
        self.uses_complement = dim - rank < rank
        # Re-orthonormalising in float64 matters: a float32 SVD's vectors are orthonormal only to ~1e-6,
        # which would leak that much of every update into the kept subspace.
        q, _ = torch.linalg.qr(kept.double(), mode="complete" if self.uses_complement else "reduced")
        self.basis = (q[:, rank:] if self.uses_complement else q).float().contiguous()

    def left(self, x: torch.Tensor) -> torch.Tensor:
        """(I - K Kᵀ) x, for x with ``dim`` rows."""
        if self.uses_complement:
            return self.basis @ (self.basis.T @ x)
        return x.addmm_(self.basis, self.basis.T @ x, alpha=-1)

    def right(self, x: torch.Tensor) -> torch.Tensor:
        """x (I - K Kᵀ), for x with ``dim`` columns."""
        if self.uses_complement:
            return (x @ self.basis) @ self.basis.T
        return x.addmm_(x @ self.basis, self.basis.T, alpha=-1)

    def numel(self) -> int:
        return self.basis.numel()


def side_projector(kept: torch.Tensor | None) -> SideProjector | None:
    return SideProjector(kept) if kept is not None and kept.shape[1] else None


class SharedInputSides:
    """One input-side projector for consecutive matrices that keep the same input basis.

    q/k/v (and gate/up) read one input, so where their kept rank does not cut it they keep the same
    directions: one projector holds that basis once (its memory and its float64 QR), not once a matrix.
    """

    def __init__(self):
        self._last: tuple[torch.Tensor, SideProjector] | None = None

    def __call__(self, kept: torch.Tensor | None) -> SideProjector | None:
        last = self._last
        if kept is not None and last is not None and last[0].shape == kept.shape and torch.equal(last[0], kept):
            return last[1]
        side = side_projector(kept)
        self._last = None if side is None else (kept, side)
        return side


class MatrixProjector:
    """ΔW ↦ (I - U Uᵀ) ΔW (I - V Vᵀ) for a weight stored as (out, in), or transposed (GPT-2 Conv1D).

    ``in_side``: the input side's projector where it is shared (``SharedInputSides``); else built from
    ``in_kept``.
    """

    def __init__(self, out_kept: torch.Tensor | None, in_kept: torch.Tensor | None, transposed: bool = False,
                 in_side: SideProjector | None = None):
        self.out_side = side_projector(out_kept)
        self.in_side = in_side if in_side is not None else side_projector(in_kept)
        self.transposed = transposed

    def __call__(self, delta: torch.Tensor) -> torch.Tensor:
        """Project ``delta`` (may be modified in place; use the returned tensor)."""
        rows, cols = (self.in_side, self.out_side) if self.transposed else (self.out_side, self.in_side)
        if rows is not None:
            delta = rows.left(delta)
        if cols is not None:
            delta = cols.right(delta)
        return delta

    def sides(self) -> list[SideProjector]:
        return [side for side in (self.out_side, self.in_side) if side is not None]


def distinct_sides(projectors) -> list[SideProjector]:
    """The projectors' sides, one shared by several matrices (``SharedInputSides``) once."""
    return list({id(side): side for p in projectors for side in p.sides()}.values())


def basis_parameters(projectors) -> int:
    """Floats the projectors' kept bases hold."""
    return sum(side.numel() for side in distinct_sides(projectors))
