"""What adaptive_svd's preparation (calibration and decomposition) costs, and how it grows with the tasks a
lineage has learned: the strategy's own ``prepare`` on the real model's task stream, as a job calls it.

    python -m bench.prepare_cost                                   # SmolLM2-135M, tasks_learned 1..3
    python -m bench.prepare_cost --baseline /tmp/old --repeats 3   # beside another checkout, in one run
    python -m bench.prepare_cost --model tiny --tasks 1,2          # the tiny Llama, a quick look

Job ``t`` (``tasks_learned = t``) trains task ``t`` of the stream (``bench.continual.real_stream``, 32
training records a task; past its four tasks the stream starts over, so that any ``t`` can be measured)
with 32 records of each earlier task (``worker.job_inputs``' sample) and the service's reference set,
batch 8, default retention, as run 4 of bench/RESULTS.md did. Every measurement runs in its own process
(``--baseline``: with that checkout's ``worker`` on the path), alternating between the checkouts, so that
both see the same machine; the JSON gives medians over the repeats. Per checkout and job: seconds before
the ``decomposing`` phase (``calibrate_s``), after it (``decompose_s``) and in all, and the old data
drawn; per checkout the largest growth of the process's peak resident memory over preparation; between
the checkouts, the largest principal angle between the kept input subspaces (of the matrices that keep
the same number of directions) and how many matrices keep a different number. ``PREPARE_COST_THREADS``:
torch threads (2 by default).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]  # this checkout's root
TRAIN, HELD_OUT, PRIOR_PER_TASK, BATCH = 32, 16, 32, 8  # run 4's stream and batch; worker.job_inputs' sample


def _child(model_name: str, tasks: list[int], bases_out: str | None) -> dict:
    """One process's measurements: every job of ``tasks`` on one loaded model (run with the checkout to
    measure first on the path)."""
    import resource
    import time

    import torch

    from app.jobs.strategies import Retention
    from worker.engine import TrainConfig
    from worker.engine.data import encode
    from worker.engine.strategies import get as get_strategy
    from worker.engine.strategies.base import Context
    from worker.engine.trainer import reference_records

    torch.set_num_threads(int(os.environ.get("PREPARE_COST_THREADS", "2")))
    if model_name == "tiny":
        from worker.tiny import build_tiny_causal_lm

        model, tokenizer = build_tiny_causal_lm(hidden=128, layers=4, intermediate=256)
        texts = [f"General sentence number {i} about the world." for i in range(36)]
    else:
        from bench.continual.real import load_base, reference_texts

        model, tokenizer = load_base(model_name)
        texts = reference_texts()
    from bench.continual.real_stream import real_stream

    stream = real_stream(seed=0, train=TRAIN, held_out=HELD_OUT)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    config = TrainConfig(batch_size=BATCH, n_epochs=2, retention=Retention())
    reference = encode(reference_records(texts, tokenizer), tokenizer, "causal", config.max_length)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    jobs, bases = {}, {}
    for t in tasks:
        earlier = [stream[i % len(stream)] for i in range(t)]
        prior = encode([r for task in earlier for r in task.train[:PRIOR_PER_TASK]], tokenizer, "causal",
                       config.max_length)
        examples = encode(stream[t % len(stream)].train, tokenizer, "causal", config.max_length)
        marks: dict[str, float] = {}
        context = Context(examples, prior, reference, pad_id, torch.device("cpu"),
                          torch.Generator().manual_seed(config.seed), t,
                          lambda phase, marks=marks: marks.setdefault(phase, time.perf_counter()))
        started = time.perf_counter()
        prepared = get_strategy("adaptive_svd").prepare(model, config, context)
        ended = time.perf_counter()
        jobs[t] = {"calibrate_s": marks["decomposing"] - started, "decompose_s": ended - marks["decomposing"],
                   "prepare_s": ended - started, "prior_examples": len(prior),
                   "prior_drawn": min(len(prior), config.retention.calibration_batches * BATCH * 4),
                   "mean_kept_in": statistics.fmean(m["kept_in"] for m in prepared.retention["matrices"].values())}
        names = {param: name for name, param in model.named_parameters()}
        bases[t] = {names[param]: (p.in_side.basis, p.in_side.uses_complement)
                    for param, p in prepared.projectors.items() if p.in_side is not None}
    if bases_out:
        torch.save(bases, bases_out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"jobs": jobs, "peak_rss_growth_mb": (peak - before) / 1024}


def _measure(root: Path, model: str, tasks: list[int], bases_out: str | None) -> dict:
    command = [sys.executable, str(HERE / "bench" / "prepare_cost.py"), "--child", "--model", model,
               "--tasks", ",".join(map(str, tasks))] + (["--bases-out", bases_out] if bases_out else [])
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"measuring {root} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _angles(first: dict, second: dict) -> dict:
    import torch

    largest, differ = 0.0, 0
    for name, (a, a_complement) in first.items():
        b, b_complement = second[name]
        if a.shape != b.shape or a_complement != b_complement:
            differ += 1
            continue
        # Equal dimensions: the subspaces' angles are their complements' angles.
        cosines = torch.linalg.svdvals(a.double().T @ b.double())
        largest = max(largest, float(torch.arccos(cosines.min().clamp(max=1.0))))
    return {"max_principal_angle": largest, "matrices_kept_differently": differ, "matrices": len(first)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m", help="a bench.real_model name, or 'tiny'")
    parser.add_argument("--tasks", default="1,2,3", help="the jobs' tasks_learned")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout's root (e.g. `git archive main`)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bases-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    tasks = [int(t) for t in args.tasks.split(",")]
    if args.child:
        print(json.dumps(_child(args.model, tasks, args.bases_out)))
        return

    import torch

    roots = {"current": HERE} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    runs: dict[str, list[dict]] = {name: [] for name in roots}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for name, root in roots.items():
                bases = f"{scratch}/{name}.pt" if repeat == 0 else None
                runs[name].append(_measure(root, args.model, tasks, bases))
                print(f"repeat {repeat} {name}: " + json.dumps(runs[name][-1]["jobs"]), file=sys.stderr)
        kept = {name: torch.load(f"{scratch}/{name}.pt") for name in roots}
    threads = os.environ.get("PREPARE_COST_THREADS", "2")
    result: dict = {"model": args.model, "repeats": args.repeats, "threads": threads}
    for name, measured in runs.items():
        result[name] = {
            "peak_rss_growth_mb": statistics.median(m["peak_rss_growth_mb"] for m in measured),
            "jobs": {t: {key: statistics.median(m["jobs"][str(t)][key] for m in measured)
                         for key in measured[0]["jobs"][str(t)]} for t in tasks},
        }
    if args.baseline:
        result["kept_subspace_vs_baseline"] = {t: _angles(kept["baseline"][t], kept["current"][t]) for t in tasks}
    print(json.dumps(result))


if __name__ == "__main__":
    if not __package__:
        sys.path.pop(0)  # run as a file (a measuring process): ``bench`` and ``worker`` come from PYTHONPATH
    main()
