"""How much of each matrix to keep: from importance (or fixed), growing with tasks learned."""

from __future__ import annotations

from app.jobs.strategies import Retention


def kept_ratio(importance: float, config: Retention, tasks_learned: int) -> float:
    """The fraction of a matrix's rank to keep.

    A first task keeps between ``min_ratio`` and ``target_ratio`` (more for more important matrices, as
    in the paper), or ``fixed_ratio`` everywhere. Each learned task then closes part of the gap to
    ``max_ratio`` (t/(t+1) of it), so older knowledge claims more of the space while some always stays
    free for the new task.
    """
    if config.mode == "fixed":
        start = config.fixed_ratio
    else:
        start = config.min_ratio + importance * (config.target_ratio - config.min_ratio)
    growth = tasks_learned / (tasks_learned + 1)
    return max(start, start + (config.max_ratio - start) * growth)


def kept_rank(dim: int, ratio: float) -> int:
    """k = round(d * ratio), leaving at least one direction trainable."""
    return min(dim - 1, max(0, round(dim * ratio)))


def reference_cap(dim: int, importance: float, config: Retention) -> int:
    """The most input directions the reference set (general ability) may keep in a matrix:
    ``reference_share`` of the rank a lineage's first job keeps there, whatever the tasks learned since.

    Tied to the growing kept rank instead, general text's small directions claimed twice the room by the
    twelfth task, and the late tasks were learned less (bench/RESULTS.md, "Late-task plasticity"). The
    earlier tasks' inputs take the growing rest.
    """
    return round(config.reference_share * kept_rank(dim, kept_ratio(importance, config, 0)))
