"""PNG figures: an accuracy heatmap per strategy (and all of them side by side), and ACC/BWT vs cost."""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def slug(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]+", "-", name).strip("-")


def _heatmap(ax, matrix: list[list[float | None]], task_names: list[str], title: str):
    values = [[math.nan if v is None else v for v in row] for row in matrix]
    image = ax.imshow(values, vmin=0.0, vmax=1.0, cmap="viridis")
    count = len(task_names)
    step = 1 if count <= 8 else 2
    ticks = list(range(0, count, step))
    ax.set_xticks(ticks, [task_names[i] for i in ticks], rotation=90, fontsize=7)
    ax.set_yticks(ticks, [task_names[i] for i in ticks], fontsize=7)
    ax.set_xlabel("scored on task")
    ax.set_ylabel("after learning task")
    ax.set_title(title, fontsize=9)
    if count <= 8:
        for t, row in enumerate(values):
            for i, v in enumerate(row):
                if not math.isnan(v):
                    ax.text(i, t, f"{v:.2f}", ha="center", va="center", fontsize=6,
                            color="black" if v > 0.6 else "white")
    return image


def _title(name: str, result: dict) -> str:
    acc, bwt = result["mean"]["acc"], result["mean"]["bwt"]
    return f"{name}\nACC {acc:.2f}  BWT {bwt:+.2f}" if acc is not None and bwt is not None else name


def write_heatmaps(strategies: dict, task_names: list[str], folder: Path, prefix: str = "") -> list[Path]:
    """``<prefix>heatmap-<strategy>.png`` each, and ``<prefix>heatmaps.png`` with all side by side."""
    written = []
    for name, result in strategies.items():
        figure, ax = plt.subplots(figsize=(4.2, 3.8), layout="constrained")
        figure.colorbar(_heatmap(ax, result["matrix_mean"], task_names, _title(name, result)), ax=ax)
        written.append(_save(figure, folder / f"{prefix}heatmap-{slug(name)}.png"))
    columns = min(3, len(strategies))
    rows = math.ceil(len(strategies) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.8 * columns, 4.0 * rows), layout="constrained",
                                squeeze=False)
    image = None
    for ax, (name, result) in zip(axes.flat, strategies.items(), strict=False):
        image = _heatmap(ax, result["matrix_mean"], task_names, _title(name, result))
    for ax in list(axes.flat)[len(strategies):]:
        ax.axis("off")
    figure.colorbar(image, ax=axes, shrink=0.6, label="exact match (held-out, mean over seeds)")
    written.append(_save(figure, folder / f"{prefix}heatmaps.png"))
    return written


def write_cost_chart(strategies: dict, folder: Path, prefix: str = "") -> Path:
    """ACC and BWT (mean ± std over seeds) against training wall seconds per stream."""
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.8), layout="constrained")
    for ax, key, label in ((axes[0], "acc", "ACC (final mean accuracy)"),
                           (axes[1], "bwt", "BWT (backward transfer)")):
        for index, (name, result) in enumerate(strategies.items()):
            m, s = result["mean"], result["std"]
            if m[key] is None or m["train_seconds"] is None:
                continue
            ax.errorbar(m["train_seconds"], m[key], xerr=s["train_seconds"], yerr=s[key], fmt="os^Dvp"[index % 6],
                        capsize=3, label=name, alpha=0.8)
        ax.legend(fontsize=7)
        ax.set_xlabel("training seconds per stream (mean ± std, seeds)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    return _save(figure, folder / f"{prefix}cost.png")


def _save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
