"""From accuracy matrices to the figures the harness reports: per run, then mean and std over seeds.

ACC, BWT, FWT and per-task forgetting come from ``app.lineages.continual_metrics.summarize`` (the service's own
definitions). Added here: ``forgetting`` = mean over earlier tasks of (best earlier score − final
score), ``learning_accuracy`` = mean_i R[i][i] (how well each task was learned when it was learned),
``general_drift`` = general-task score after the stream − before it, and where the run measured them
(real models) ``general_kept`` and ``perplexity_ratio`` after the stream and ``general_seconds``, the
general check's mean seconds per version.
Std is the sample standard deviation over seeds (0 with one seed).
"""

from __future__ import annotations

from statistics import fmean, stdev

from app.lineages.continual_metrics import summarize

AGGREGATED = ("acc", "bwt", "fwt", "forgetting", "learning_accuracy", "general_drift", "general_kept",
              "perplexity_ratio", "general_seconds", "train_seconds", "wall_seconds", "peak_memory_mb")


def mean_of(values) -> float | None:
    seen = [v for v in values if v is not None]
    return fmean(seen) if seen else None


def run_metrics(run: dict, task_names: list[str], general_before: float | None) -> dict:
    """Summarise one run (``matrix`` rows after each task; ``base_row``; ``general`` after each task)."""
    matrix = run["matrix"]
    summary = summarize(matrix, base=run.get("base_row"))
    forgetting = {task_names[i]: f for i, f in summary["forgetting"].items()}
    general = run.get("general") or []
    after = run.get("general_after_each_task", {})
    final_general = general[-1] if general else None
    return {
        "acc": summary["acc"],
        "bwt": summary["bwt"],
        "fwt": summary["fwt"],
        "forgetting": mean_of(forgetting.values()),
        "forgetting_per_task": forgetting,
        "learning_accuracy": mean_of(matrix[i][i] for i in range(len(matrix))),
        "general_drift": (final_general - general_before
                          if final_general is not None and general_before is not None else None),
        "general_kept": after.get("general_kept", [None])[-1],
        "perplexity_ratio": after.get("perplexity_ratio", [None])[-1],
        "general_seconds": mean_of(after.get("general_seconds", [])),
    }


def aggregate(runs: list[dict]) -> dict:
    """Mean and std over seeds of every aggregated figure, and the seed-mean matrix."""
    mean, std = {}, {}
    for key in AGGREGATED:
        values = [r[key] for r in runs if r.get(key) is not None]
        mean[key] = fmean(values) if values else None
        std[key] = (stdev(values) if len(values) > 1 else 0.0) if values else None
    width = len(runs[0]["matrix"])
    matrix_mean = [[mean_of(r["matrix"][t][i] for r in runs) for i in range(width)] for t in range(width)]
    return {"seeds": [r["seed"] for r in runs], "mean": mean, "std": std, "matrix_mean": matrix_mean}


def _cell(value: float | None, spread: float | None = None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    text = f"{value:+.3f}" if signed else f"{value:.3f}"
    return text if not spread else f"{text}±{spread:.3f}"


def text_report(strategies: dict, task_names: list[str]) -> str:
    """A table a person reads: one line per strategy, then each strategy's seed-mean matrix."""
    lines = [(f"{'strategy':<20} {'ACC':>13} {'BWT':>14} {'forgetting':>13} {'general drift':>14} "
             f"{'general kept':>12} {'ppl ratio':>9} {'learned R[i][i]':>15} {'train s':>8} {'peak MB':>8}")]
    for name, result in strategies.items():
        m, s = result["mean"], result["std"]
        lines.append(
            f"{name:<20} {_cell(m['acc'], s['acc']):>13} {_cell(m['bwt'], s['bwt'], True):>14} "
            f"{_cell(m['forgetting'], s['forgetting']):>13} {_cell(m['general_drift'], None, True):>14} "
            f"{_cell(m['general_kept']):>12} {_cell(m['perplexity_ratio']):>9} "
            f"{_cell(m['learning_accuracy']):>15} {_cell(m['train_seconds']):>8} {_cell(m['peak_memory_mb']):>8}"
        )
    for name, result in strategies.items():
        lines.append(f"\n{name}: rows = after {task_names[0]}..{task_names[-1]}, columns = tasks (mean over seeds)")
        lines.extend("  " + " ".join("  -  " if v is None else f"{v:.2f}" for v in row)
                     for row in result["matrix_mean"])
        lines.extend(_after_each_task(run) for run in result["runs"])
    return "\n".join(lines)


def _after_each_task(run: dict) -> str:
    """One seed's general ability and kept room, version by version: whether room runs out shows here.
    General ability is ``general_kept`` where it was measured, else the general task's score (tiny models)."""
    kept = [g for g in run.get("general_after_each_task", {}).get("general_kept", []) if g is not None]
    scores = run.get("general") if isinstance(run.get("general"), list) else []
    general = kept or scores
    room = [k["inputs"] for k in run.get("kept_room") or [] if k]
    return (f"  seed {run['seed']}: general {' '.join(f'{g:.2f}' for g in general) or 'n/a'}"
            + (f"; kept input share {' '.join(f'{k:.2f}' for k in room)}" if room else ""))
