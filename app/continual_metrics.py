"""Continual-learning summary of an accuracy matrix R[t][i] (row t: after learning task t).

ACC = mean_i R[T][i]; BWT = mean_{i<T} (R[T][i] − R[i][i]);
forgetting f_i = max_{i<=l<T} R[l][i] − R[T][i];
FWT = mean_{i>=1} (before_i − base_i): how much the tasks learned earlier already help task i
before it is trained on. before_i is task i's score on the version it was trained from
(measured just before training), base_i its score on the lineage's base model (version 1).
Task 0 is trained from the base itself, so it carries no transfer and is left out.
Pure Python, so the API serves it without the worker.
"""

from __future__ import annotations

from statistics import fmean

Row = list[float | None]
Matrix = list[Row]


def row_acc(row: Row) -> float | None:
    """Mean of the measured scores in one row (None when nothing was measured)."""
    seen = [s for s in row if s is not None]
    return fmean(seen) if seen else None


def _forward_transfer(before: Row | None, base: Row | None) -> float | None:
    if not before or not base:
        return None
    gains = [b - r for b, r in zip(before[1:], base[1:]) if b is not None and r is not None]
    return fmean(gains) if gains else None


def summarize(matrix: Matrix, before: Row | None = None, base: Row | None = None) -> dict:
    """Summarise a matrix whose row t is measured after learning task t.

    ``matrix[t][i]`` may be None (not measured). ``before[i]``: task i's score on the version
    it was trained from; ``base[i]``: its score on the base model. Both optional; FWT needs both.
    """
    if not matrix:
        return {"acc": None, "bwt": None, "forgetting": {}, "fwt": None}
    last = len(matrix) - 1
    final = matrix[last]
    acc = row_acc(final[: last + 1])
    drops = [final[i] - matrix[i][i] for i in range(last)
             if final[i] is not None and matrix[i][i] is not None]
    # With one task there is nothing to forget: BWT is 0 by definition, not unknown.
    bwt = fmean(drops) if drops else (0.0 if last == 0 and acc is not None else None)
    forgetting: dict[int, float] = {}
    for i in range(last):
        earlier = [matrix[l][i] for l in range(i, last) if matrix[l][i] is not None]
        if earlier and final[i] is not None:
            forgetting[i] = max(earlier) - final[i]
    return {"acc": acc, "bwt": bwt, "forgetting": forgetting, "fwt": _forward_transfer(before, base)}


def gate_measures(previous_rows: Matrix, new_row: Row) -> dict[str, float | None]:
    """The task-score values the gates judge: ``max_forgetting`` and ``acc_drop``.

    ``previous_rows`` are the rows of the versions before the new one (oldest first, the last
    one being the version it is compared with, normally the head); ``new_row`` the new version's.
    max_forgetting = max_i (best earlier score on task i − new score on task i), over the tasks
    measured in both; acc_drop = ACC of the last previous row − ACC of the new row.
    None where there is nothing to compare (then the gate is skipped).
    """
    drops = []
    for i, now in enumerate(new_row):
        earlier = [row[i] for row in previous_rows if i < len(row) and row[i] is not None]
        if earlier and now is not None:
            drops.append(max(earlier) - now)
    previous_acc = row_acc(previous_rows[-1]) if previous_rows else None
    new_acc = row_acc(new_row)
    acc_drop = previous_acc - new_acc if previous_acc is not None and new_acc is not None else None
    return {"max_forgetting": max(drops) if drops else None, "acc_drop": acc_drop}
