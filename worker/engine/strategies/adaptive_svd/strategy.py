"""``adaptive_svd``, the method: full fine-tuning whose updates stay out of the subspace each target
matrix keeps for earlier tasks (by layer importance and tasks learned), with ProjectedAdamW."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

import torch
import torch.distributed as dist

from app.jobs import strategies as specs

from ...targets import Target, find_targets
from ..base import Prepared, decay_groups, unchanged
from .calibration import block_indices, blocks_of, calibration_batches, observe_by_block
from .distributed import RowShardedProjector, bases_from_owners, share_bases
from .importance import cosine_importance
from .optimizer import ProjectedAdamW
from .retention import kept_rank, kept_ratio, reference_cap
from .step_size import step_scale
from .subspace import (
    MatrixProjector,
    Moments,
    SharedInputSides,
    Spectrum,
    activation_basis,
    basis_parameters,
    union,
    weight_bases,
)

PRIOR_SAMPLES_PER_CALIBRATION_BATCH = 4  # prior examples per new-task calibration example


@dataclass
class Projected(Prepared):
    """adaptive_svd's prepared task: its optimizer projects each target matrix's update."""

    # Each target's projector, keyed by its parameter; empty once sharded (the sharded optimizer holds them).
    projectors: dict[torch.Tensor, MatrixProjector] = field(default_factory=dict)

    def share_from_lead(self) -> None:
        share_bases(self.projectors.values())

    def on_shards(self, model, groups: list[dict], shards: Mapping[torch.Tensor, torch.Tensor]) -> Projected:
        optimizer = ProjectedAdamW(groups, {shards[p]: RowShardedProjector(projector, shards[p])
                                            for p, projector in self.projectors.items()},
                                   step_scale=self.optimizer.step_scale)
        # The sharded optimizer holds the projectors now. Keeping these, keyed by the whole parameters, kept
        # every rank's whole float32 copy of the matrices alive beside its shard (bench/RESULTS.md, "Scale").
        return replace(self, model=model, optimizer=optimizer, projectors={})


class AdaptiveSvd:
    spec = specs.get("adaptive_svd")

    def prepare(self, model, config, context) -> Prepared:
        count = config.retention.calibration_batches * config.batch_size
        calibration = calibration_batches(context.examples, count, context.pad_id, context.device,
                                          context.generator)

        def old(examples):  # drawn only when there are any, so the shuffler's state is as before
            return calibration_batches(examples, count * PRIOR_SAMPLES_PER_CALIBRATION_BATCH, context.pad_id,
                                       context.device, context.generator) if examples else []

        # The reference set (general ability) is old data on every job, not only a first job's: kept on the
        # first job only, a real model's general answers wore away over the later tasks (bench/RESULTS.md).
        use_reference = config.retention.reference_share > 0
        prior, reference = old(context.prior), old(context.reference) if use_reference else []
        return prepare_adaptive_svd(model, config, calibration_inputs=calibration, prior_inputs=prior,
                                    reference_inputs=reference, tasks_learned=context.tasks_learned,
                                    on_phase=context.on_phase)


def old_input_bases(model, targets: list[Target], ranks: dict[str, int], reference_caps: dict[str, int],
                    prior_inputs: list[dict], reference_inputs: list[dict],
                    config) -> Iterator[tuple[Target, torch.Tensor | None]]:
    """Each target with the input directions old data occupies (``old_inputs_basis``), a block (decoder
    layer) at a time: a block's statistics are gathered, decomposed and dropped before the next block's
    begin, so they never take more memory than one layer's. Targets that read the same input (q/k/v;
    gate/up) share its statistics and their eigendecomposition.

    Among several processes, each gathers and decomposes the statistics of every ``size``-th block only,
    and the bases go from the rank that computed them to every rank once all blocks have run.
    """
    rank, size = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    owner = {name: block % size for name, block in block_indices(targets, blocks_of(model)).items()}
    sources = (prior_inputs, reference_inputs)
    moments: dict[tuple[int, str], Moments] = {}
    readers: dict[str, str] = {}  # target -> the target whose statistics of the same input it shares

    def record(source: int, target: Target, x: torch.Tensor, _y: torch.Tensor, reader: Target) -> None:
        readers[target.name] = reader.name
        if reader is target and owner[target.name] == rank:
            moments.setdefault((source, target.name), Moments(x.shape[1])).add(x)

    mine: dict[str, torch.Tensor] = {}
    for members in observe_by_block(model, targets, sources, record):
        spectra = {key: statistic.spectrum() for key, statistic in moments.items()}
        moments.clear()
        for target in (t for t in members if owner[t.name] == rank):
            # A source the target never ran on (no batches, or a module the forward pass skips) has nothing
            # to keep: no basis without batches, an empty one for a module that never ran.
            tasks, general = (
                spectra.get((source, readers.get(target.name, target.name)),
                            Spectrum(torch.zeros(0), target.weight.new_zeros(target.shape[1], 0)))
                if sources[source] else None
                for source in (0, 1)
            )
            basis = old_inputs_basis(ranks[target.name], reference_caps[target.name], tasks, general, config)
            if size == 1:
                yield target, basis
            else:
                mine[target.name] = basis
    if size > 1:
        received = bases_from_owners([t.name for t in targets], mine, owner, targets[0].weight.device)
        yield from ((target, received[target.name]) for target in targets)


def old_inputs_basis(rank: int, reference_rank: int, tasks: Spectrum | None, general: Spectrum | None,
                     config) -> torch.Tensor | None:
    """The input directions old data occupies, at most ``rank``: earlier tasks' first (up to ``energy``),
    then the reference set's (up to ``reference_energy``), at most ``reference_rank`` of them
    (``retention.reference_cap``). The cap is what lets a lineage's first job, whose only old data is the
    reference set, still learn: general text and a chat task share input directions, and keeping all of them
    would leave the task little room. None: no old data at all."""
    kept = activation_basis(tasks, config.energy, cap=rank) if tasks is not None else None
    if general is None:
        return kept
    reference = activation_basis(general, config.reference_energy, cap=reference_rank)
    return reference if kept is None else union(kept, reference, cap=rank)


def kept_bases(target: Target, rank: int, act: torch.Tensor | None, config) -> dict:
    """The kept output- and input-side bases of one matrix for the configured retention basis.

    ``act``: the input directions old data occupies (``old_inputs_basis``), None without old data.
    Every basis keeps at most the same budget of ``rank`` directions a side, so the bases differ only in
    which directions they protect: the top singular ones, the ones old inputs occupy, or those old
    inputs occupy first and top singular ones for the rest of the budget.
    """
    if act is not None and config.basis == "activations":
        return {"out": None, "in": act, "activation_rank": act.shape[1]}
    weight = target.weight.detach()  # its SVD only where the weights' directions are kept
    u, v = weight_bases(weight.T if target.transposed else weight, rank)
    if act is None:
        return {"out": u, "in": v, "activation_rank": 0}
    return {"out": u, "in": union(act, v, cap=rank), "activation_rank": act.shape[1]}


def prepare_adaptive_svd(
    model, config, *, calibration_inputs, prior_inputs, tasks_learned: int, on_phase, reference_inputs=()
) -> Prepared:
    """``*_inputs``: padded batches (``calibration_batches``) of the new task, earlier tasks and the
    reference set."""
    retention = config.retention
    targets = find_targets(model, retention.target_regex)
    importance = cosine_importance(model, targets, calibration_inputs)
    ratios = {t.name: kept_ratio(importance[t.name], retention, tasks_learned) for t in targets}
    ranks = {t.name: kept_rank(min(t.shape), ratios[t.name]) for t in targets}
    old_inputs = retention.basis != "weights" and bool(prior_inputs or reference_inputs)

    # Old inputs' statistics are gathered and decomposed a layer at a time, so this phase holds both.
    on_phase("decomposing")
    caps = {t.name: reference_cap(min(t.shape), importance[t.name], retention) for t in targets}
    pairs = (old_input_bases(model, targets, ranks, caps, list(prior_inputs), list(reference_inputs), retention)
             if old_inputs else ((target, None) for target in targets))
    projectors, matrices, shared = {}, {}, SharedInputSides()
    for target, act in pairs:
        bases = kept_bases(target, ranks[target.name], act, retention)
        projectors[target.weight] = MatrixProjector(bases["out"], None, transposed=target.transposed,
                                                    in_side=shared(bases["in"]))
        matrices[target.name] = {
            "shape": list(target.shape),
            "importance": importance[target.name],
            "ratio": ratios[target.name],
            "weight_rank": ranks[target.name],
            "activation_rank": bases["activation_rank"],
            "kept_out": 0 if bases["out"] is None else bases["out"].shape[1],
            "kept_in": bases["in"].shape[1],
        }
    matrices = {t.name: matrices[t.name] for t in targets}  # in the model's order, as before

    model.requires_grad_(retention.train_embeddings)
    for target in targets:
        target.weight.requires_grad_(True)
        if getattr(target.module, "bias", None) is not None:
            # A bias shift would move outputs even for inputs in the kept subspace.
            target.module.bias.requires_grad_(False)
    groups = decay_groups(model.named_parameters(), config.weight_decay)
    scale = step_scale(targets) if retention.relative_step else 1.0
    optimizer = ProjectedAdamW(groups, projectors, lr=config.learning_rate, step_scale=scale)
    summary = _retention_summary(matrices, retention, tasks_learned, old_inputs, projectors, scale)
    return Projected(model, optimizer, unchanged, summary, projectors)


def _retention_summary(matrices, retention, tasks_learned, old_inputs: bool, projectors, scale: float) -> dict:
    kept_fraction = [
        1 - (1 - m["kept_out"] / m["shape"][0]) * (1 - m["kept_in"] / m["shape"][1])
        for m in matrices.values()
    ]
    return {
        "strategy": "adaptive_svd",
        "matrices": matrices,
        "summary": {
            "mode": retention.mode,
            "basis": retention.basis if old_inputs or retention.basis == "weights" else "weights",
            "tasks_learned": tasks_learned,
            "matrix_count": len(matrices),
            "mean_ratio": sum(m["ratio"] for m in matrices.values()) / len(matrices),
            # Share of each matrix's entries the update cannot touch: 1 - (1 - ku/m)(1 - kv/n), averaged.
            "mean_frozen_share": sum(kept_fraction) / len(kept_fraction),
            # Share of each matrix's input directions kept from the update, averaged: the room left to learn
            # in is 1 minus it, so a long lineage shows here whether that room runs out.
            "mean_kept_input_share": sum(m["kept_in"] / m["shape"][1] for m in matrices.values()) / len(matrices),
            "basis_parameters": basis_parameters(projectors.values()),  # a basis shared by matrices, once
            "step_scale": scale,  # what the learning rate was multiplied by (``step_size``)
        },
    }

