"""Continual-learning summary of an accuracy matrix R[t][i] (row t: after learning task t).

ACC = mean_i R[T][i]; BWT = mean_{i<T} (R[T][i] − R[i][i]); forgetting f_i = max_{l<T} R[l][i] − R[T][i];
FWT_i = R[i-1][i] − base_i where the score of task i before it was learned (base_i) is known.
Pure Python, so the API serves it without the worker.
"""

from __future__ import annotations

from statistics import fmean

Matrix = list[list[float | None]]


def summarize(matrix: Matrix, before: list[float | None] | None = None) -> dict:
    """Summarise a square-or-taller matrix whose row t is measured after learning task t.

    ``matrix[t][i]`` may be None (not measured). ``before[i]`` is task i's score on the model
    it was trained from (for forward transfer); optional.
    """
    if not matrix:
        return {"acc": None, "bwt": None, "forgetting": {}, "fwt": None}
    last = len(matrix) - 1
    final = matrix[last]
    seen = [s for s in final[: last + 1] if s is not None]
    acc = fmean(seen) if seen else None
    drops = [final[i] - matrix[i][i] for i in range(last)
             if final[i] is not None and matrix[i][i] is not None]
    bwt = fmean(drops) if drops else (0.0 if last == 0 and acc is not None else None)
    forgetting: dict[int, float] = {}
    for i in range(last):
        earlier = [matrix[l][i] for l in range(i, last) if matrix[l][i] is not None]
        if earlier and final[i] is not None:
            forgetting[i] = max(earlier) - final[i]
    fwt = None
    if before:
        gains = [matrix[i][i] - before[i] for i in range(min(len(before), len(matrix)))
                 if before[i] is not None and matrix[i][i] is not None]
        fwt = fmean(gains) if gains else None
    return {"acc": acc, "bwt": bwt, "forgetting": forgetting, "fwt": fwt}
