"""Continual-learning summary of an accuracy matrix R[t][i] (row t: after learning task t).

ACC = mean_i R[T][i]; BWT = mean_{i<T} (R[T][i] − R[i][i]);
forgetting f_i = max_{i<=l<T} R[l][i] − R[T][i];
FWT = mean_{i>=1} (before_i − base_i): how much the tasks learned earlier already help task i
before it is trained on. before_i is task i's score on the version it was trained from, measured
just before training (R[i-1][i]: the worker stores it in that version's row, so the matrix
usually carries it); base_i is its score on the lineage's base model (version 1). Task 0 is
trained from the base itself, so it carries no transfer and is left out.
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


def _forward_transfer(matrix: Matrix, before: Row | None, base: Row | None) -> float | None:
    if not base:
        return None
    if before is None:
        # Row i-1 holds task i's score measured just before it was learned, when it was measured.
        before = [None, *(matrix[i - 1][i] if i < len(matrix[i - 1]) else None for i in range(1, len(matrix)))]
    gains = [b - r for b, r in zip(before[1:], base[1:], strict=False) if b is not None and r is not None]
    return fmean(gains) if gains else None


def summarize(matrix: Matrix, before: Row | None = None, base: Row | None = None) -> dict:
    """Summarise a matrix whose row t is measured after learning task t.

    ``matrix[t][i]`` may be None (not measured). ``before[i]``: task i's score on the version
    it was trained from (default: ``matrix[i-1][i]``); ``base[i]``: its score on the base model.
    FWT is None without ``base``.
    """
    if not matrix:
        return {"acc": None, "bwt": None, "forgetting": {}, "fwt": None}
    last = len(matrix) - 1
    final = matrix[last]
    acc = row_acc(final[: last + 1])
    drops = [score - learned for score, learned in zip(final, (matrix[i][i] for i in range(last)), strict=False)
             if score is not None and learned is not None]
    # With one task there is nothing to forget: BWT is 0 by definition, not unknown.
    bwt = fmean(drops) if drops else (0.0 if last == 0 and acc is not None else None)
    forgetting: dict[int, float] = {}
    for i in range(last):
        earlier = [s for s in (matrix[row][i] for row in range(i, last)) if s is not None]
        if earlier and (score := final[i]) is not None:
            forgetting[i] = max(earlier) - score
    return {"acc": acc, "bwt": bwt, "forgetting": forgetting, "fwt": _forward_transfer(matrix, before, base)}


def gate_measures(previous_rows: Matrix, new_row: Row) -> dict[str, float | None]:
    """The task-score values the gates judge: ``max_forgetting`` and ``acc_drop``.

    ``new_row``: the new version's scores by task position, its last entry being the task it
    just learned. ``previous_rows``: the rows of the versions before it (oldest first; the last
    one is the version it is compared with, normally the head). Cells a row holds for tasks
    not yet learned (scores measured before training) are ignored.
    max_forgetting = max over earlier tasks i of (best earlier score on i − new score on i);
    acc_drop = ACC of the last previous row − ACC of the new row, each over the tasks it learned.
    None where there is nothing to compare (then the gate is skipped).
    """
    learned_before = len(new_row) - 1
    drops: list[float] = []
    for i in range(learned_before):
        earlier = [s for s in (row[i] for row in previous_rows if i < len(row)) if s is not None]
        if earlier and (score := new_row[i]) is not None:
            drops.append(max(earlier) - score)
    previous_acc = row_acc(previous_rows[-1][:learned_before]) if previous_rows else None
    new_acc = row_acc(new_row)
    acc_drop = previous_acc - new_acc if previous_acc is not None and new_acc is not None else None
    return {"max_forgetting": max(drops) if drops else None, "acc_drop": acc_drop}
