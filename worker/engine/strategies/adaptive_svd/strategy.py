"""``adaptive_svd``, the method: full fine-tuning whose updates stay out of the subspace each target
matrix keeps for earlier tasks (by layer importance and tasks learned), with ProjectedAdamW."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from app.jobs import strategies as specs

from ...data import collate
from ...targets import Target, find_targets
from ..base import Prepared, decay_groups, unchanged
from .calibration import observe
from .distributed import RowShardedProjector, share_bases
from .importance import cosine_importance
from .optimizer import ProjectedAdamW
from .retention import kept_rank, kept_ratio
from .subspace import MatrixProjector, activation_basis, union, weight_bases

PRIOR_SAMPLES_PER_CALIBRATION_BATCH = 4  # prior examples per new-task calibration example


@dataclass
class Projected(Prepared):
    """adaptive_svd's prepared task: its optimizer projects each target matrix's update."""

    projectors: dict[torch.Tensor, MatrixProjector] = field(default_factory=dict)

    def share_from_lead(self) -> None:
        share_bases(self.projectors.values())

    def sharded_optimizer(self, groups: list[dict],
                          shards: Mapping[torch.Tensor, torch.Tensor]) -> torch.optim.Optimizer:
        return ProjectedAdamW(groups, {shards[p]: RowShardedProjector(projector, shards[p])
                                       for p, projector in self.projectors.items()})


def single_inputs(examples, count: int, pad_id: int, device, generator) -> list[dict]:
    """``count`` seeded examples, each its own unpadded batch, for calibration."""
    order = torch.randperm(len(examples), generator=generator)[:count].tolist()
    return [{k: v.to(device) for k, v in collate([examples[i]], pad_id).items()} for i in order]


class AdaptiveSvd:
    spec = specs.get("adaptive_svd")

    def prepare(self, model, config, context) -> Prepared:
        count = config.retention.calibration_batches * config.batch_size
        calibration = single_inputs(context.examples, count, context.pad_id, context.device, context.generator)

        def old(examples):  # drawn only when there are any, so the shuffler's state is as before
            return single_inputs(examples, count * PRIOR_SAMPLES_PER_CALIBRATION_BATCH, context.pad_id,
                                 context.device, context.generator) if examples else []

        # The reference set (general ability) is old data on every job, not only a first job's: kept on the
        # first job only, a real model's general answers wore away over the later tasks (bench/RESULTS.md).
        use_reference = config.retention.reference_share > 0
        prior, reference = old(context.prior), old(context.reference) if use_reference else []
        return prepare_adaptive_svd(model, config, calibration_inputs=calibration, prior_inputs=prior,
                                    reference_inputs=reference, tasks_learned=context.tasks_learned,
                                    on_phase=context.on_phase)


def input_covariances(model, targets: list[Target], inputs) -> dict[str, torch.Tensor]:
    """Uncentred covariance xᵀx / N of each target's inputs (the second moment old inputs live in)."""
    sums = {t.name: torch.zeros(t.shape[1], t.shape[1], device=t.weight.device) for t in targets}
    counts = dict.fromkeys(sums, 0)

    def record(target: Target, x: torch.Tensor, _y: torch.Tensor) -> None:
        sums[target.name].addmm_(x.T, x)
        counts[target.name] += x.shape[0]

    observe(model, targets, inputs, record)
    return {name: sums[name] / max(counts[name], 1) for name in sums}


def old_inputs_basis(rank: int, covariance: torch.Tensor | None, reference: torch.Tensor | None,
                     config) -> torch.Tensor | None:
    """The input directions old data occupies, at most ``rank``: earlier tasks' first (up to ``energy``),
    then the reference set's (up to ``reference_energy``), which may take at most ``reference_share`` of
    ``rank``. The cap is what lets a lineage's first job, whose only old data is the reference set, still
    learn: general text and a chat task share input directions, and keeping all of them would leave the
    task little room. None: no old data at all."""
    tasks = activation_basis(covariance, config.energy, cap=rank) if covariance is not None else None
    if reference is None:
        return tasks
    general = activation_basis(reference, config.reference_energy, cap=round(config.reference_share * rank))
    return general if tasks is None else union(tasks, general, cap=rank)


def kept_bases(target: Target, rank: int, covariance: torch.Tensor | None, config,
               reference: torch.Tensor | None = None) -> dict:
    """The kept output- and input-side bases of one matrix for the configured retention basis.

    ``covariance``, ``reference``: of the target's inputs on earlier tasks and on the reference set.
    Every basis keeps at most the same budget of ``rank`` directions a side, so the bases differ only in
    which directions they protect: the top singular ones, the ones old inputs occupy, or those old
    inputs occupy first and top singular ones for the rest of the budget.
    """
    act = None if config.basis == "weights" else old_inputs_basis(rank, covariance, reference, config)
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
    retention = config.retention
    targets = find_targets(model, retention.target_regex)
    importance = cosine_importance(model, targets, calibration_inputs)
    activations = retention.basis != "weights"
    covariances = input_covariances(model, targets, prior_inputs) if prior_inputs and activations else {}
    references = input_covariances(model, targets, reference_inputs) if reference_inputs and activations else {}

    on_phase("decomposing")
    projectors, matrices = {}, {}
    for target in targets:
        ratio = kept_ratio(importance[target.name], retention, tasks_learned)
        rank = kept_rank(min(target.shape), ratio)
        bases = kept_bases(target, rank, covariances.get(target.name), retention, references.get(target.name))
        projector = MatrixProjector(bases["out"], bases["in"], transposed=target.transposed)
        projectors[target.weight] = projector
        matrices[target.name] = {
            "shape": list(target.shape),
            "importance": importance[target.name],
            "ratio": ratio,
            "weight_rank": rank,
            "activation_rank": bases["activation_rank"],
            "kept_out": 0 if bases["out"] is None else bases["out"].shape[1],
            "kept_in": bases["in"].shape[1],
        }

    model.requires_grad_(retention.train_embeddings)
    for target in targets:
        target.weight.requires_grad_(True)
        if getattr(target.module, "bias", None) is not None:
            # A bias shift would move outputs even for inputs in the kept subspace.
            target.module.bias.requires_grad_(False)
    groups = decay_groups(model.named_parameters(), config.weight_decay)
    optimizer = ProjectedAdamW(groups, projectors, lr=config.learning_rate)
    return Projected(
        model,
        optimizer,
        unchanged,
        _retention_summary(matrices, retention, tasks_learned, bool(covariances or references), projectors),
        projectors,
    )


def _retention_summary(matrices, retention, tasks_learned, old_inputs: bool, projectors) -> dict:
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
            "basis_parameters": sum(p.numel() for p in projectors.values()),
        },
    }

