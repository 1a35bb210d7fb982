"""Continual-learning harness: a stream of tasks through each strategy, several seeds, JSON and PNGs.

    python -m bench.continual                                  # short built-in stream, every strategy, seed 0
    python -m bench.continual --stream long --seeds 0,1,2 --out bench/out/long
    python -m bench.continual --tasks a.jsonl b.jsonl c.jsonl  # a user's stream (Sculpt's dataset format)
    python -m bench.continual --via-api http://127.0.0.1:8000 --strategies adaptive_svd
    python -m bench.continual --model smollm2-135m --out bench/out/real  # a real model, its chat stream
    python -m bench.continual --model smollm2-135m --stream long        # twelve chat tasks instead of four

A tiny Llama (worker/tiny.py) first learns the general task (copying); each strategy then learns the
stream's tasks in order, from that same base, once per seed, each run in a process of its own. After
every task all tasks are scored (exact match on their held-out splits) and so is the general task.
With ``--model smollm2-135m`` the base is SmolLM2-135M-Instruct (bench/real_model.py), the stream is
four chat tasks, or twelve with ``--stream long`` (bench/continual/real_stream.py), and general ability
is the service's suites (bench/continual/real.py): ``general_kept`` and the reference perplexity ratio.
Printed: a table, the seed-mean matrices, and last the JSON (also ``--out DIR/results.json``, with
the PNGs). Through the service (``--via-api``) the base is saved to ``--base-dir``, which must lie in
the server's SCULPT_MODEL_ROOTS (by default ``sculpt serve`` allows SCULPT_HOME and its working
directory, so run both from the same folder).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
from pathlib import Path

import torch

from app.jobs.schemas import NAME_PATTERN
from bench.continual import plots
from bench.continual.real_stream import real_stream
from bench.continual.report import aggregate, run_metrics, text_report
from bench.continual.runner import (
    CPU_MEMORY,
    build_base,
    exact_match,
    isolated,
    memory_measure,
    run_stream,
    tiny_general_check,
)
from bench.continual.strategies import STRATEGIES, TrainSettings
from bench.continual.streams import BUILT_IN, StreamError, Task, built_in_stream, file_stream, general_task
from bench.continual.via_api import (
    API_STRATEGIES,
    ApiError,
    client_for,
    holds_other_files,
    run_stream_via_api,
    save_base,
)
from bench.real_model import MODELS

TINY = "tiny"
# Per model, what flags left out mean. The real model's sizes keep every strategy x 1 seed near an hour on
# two CPU cores shared with others (bench/RESULTS.md): 8 steps a task, 40 of the 120 general questions after
# each task; its learning rate is each strategy's own default, as a job that sets none gets.
MODEL_DEFAULTS = {
    TINY: {"train_size": 32, "held_out": 24, "epochs": 30, "lr": 5e-3, "threads": 1, "general_items": None,
           "strategies": STRATEGIES},
    **{name: {"train_size": 32, "held_out": 16, "epochs": 2, "lr": None, "threads": 2, "general_items": 40,
              "strategies": ("full", "lora", "adaptive_svd", "adaptive_svd_replay", "peft_osf", "replay")}
       for name in MODELS},
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.continual", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=[TINY, *MODELS], default=TINY,
                        help="the base: a tiny Llama trained here (default), or a real pretrained model")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--stream", choices=sorted(BUILT_IN),
                        help="the built-in stream: short = 5 tasks, long = 15 (tiny); short = 4, long = 12 "
                             "(real models; default short)")
    source.add_argument("--tasks", nargs="+", metavar="JSONL", help="a stream of task files, in order")
    parser.add_argument("--strategies", help=f"comma-separated, from {', '.join(STRATEGIES)} (default: all; "
                                             "real models: all but adaptive_svd_fixed; with --via-api: "
                                             "adaptive_svd)")
    parser.add_argument("--task-count", type=int, help="learn only the stream's first N tasks")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    parser.add_argument("--train-size", type=int, help="train records per built-in task (32)")
    parser.add_argument("--held-out", type=int, help="held-out records per built-in task (tiny 24, real 16)")
    parser.add_argument("--held-out-fraction", type=float, default=0.2, help="held out of each task file")
    parser.add_argument("--epochs", type=int, help="tiny 30, real 2")
    parser.add_argument("--lr", type=float, help="tiny 5e-3; real: each strategy's default")
    parser.add_argument("--general-items", type=int,
                        help="real models: general_answers questions asked after each task (default 40 of 120)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--replay-per-task", type=int, default=4,
                        help="replay buffer: records kept of each earlier task and of the general task")
    parser.add_argument("--basis", choices=["weights", "activations", "both"],
                        help="adaptive_svd's retention basis (default: the engine's, activations)")
    parser.add_argument("--energy", type=float, help="adaptive_svd's activation energy (default: the engine's)")
    parser.add_argument("--reference-share", type=float,
                        help="adaptive_svd's retention.reference_share: the reference set's cap on the kept rank")
    parser.add_argument("--reference-energy", type=float, help="adaptive_svd's retention.reference_energy")
    parser.add_argument("--hidden", type=int, default=64, help="the tiny Llama's width (2 layers, MLP 2x)")
    parser.add_argument("--base-epochs", type=int, default=30, help="epochs the base spends on the general task")
    parser.add_argument("--threads", type=int, help="torch CPU threads (tiny 1, real 2)")
    parser.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
    parser.add_argument("--out", type=Path, help="write results.json and the PNGs here")
    parser.add_argument("--via-api", metavar="URL", help="run through a Sculpt service at URL instead")
    parser.add_argument("--api-key", default=os.environ.get("SCULPT_API_KEY"),
                        help="the service's API key (default: $SCULPT_API_KEY)")
    parser.add_argument("--base-dir", type=Path,
                        help="with --via-api: where the base is saved, replacing what is there (inside the "
                             "server's model roots; default .sculpt/bench-base/MODEL)")
    parser.add_argument("--job-timeout", type=float, default=1800, help="with --via-api: seconds per job")
    args = parser.parse_args(argv)
    defaults = MODEL_DEFAULTS[args.model]
    for name, value in defaults.items():
        if name != "strategies" and getattr(args, name) is None:
            setattr(args, name, value)
    args.stream = args.stream or "short"
    args.base_dir = args.base_dir or Path(".sculpt/bench-base") / args.model  # one folder a model: no stale files
    if args.via_api and holds_other_files(args.base_dir):
        parser.error(f"--base-dir {args.base_dir} holds files that are not a saved model, and the base replaces "
                     "what is there; give an empty or new folder")
    if args.task_count is not None and args.task_count < 1:
        parser.error("--task-count must be at least 1")
    allowed = API_STRATEGIES if args.via_api else STRATEGIES
    args.strategies = (args.strategies or ("adaptive_svd" if args.via_api else ",".join(defaults["strategies"])))
    args.strategies = args.strategies.split(",")
    unknown = [s for s in args.strategies if s not in allowed]
    if unknown:
        parser.error(f"unknown strategies {unknown}; choose from {', '.join(allowed)}")
    try:
        args.seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    try:  # read and check task files before any training
        args.streams = {seed: load_stream(args, seed) for seed in args.seeds}
    except StreamError as exc:
        parser.error(str(exc))
    names = [t.name for t in args.streams[args.seeds[0]]]
    if args.via_api and not all(re.fullmatch(NAME_PATTERN, name) for name in names):
        parser.error(f"the service names tasks by {NAME_PATTERN}; rename the task files {names}")
    return args


def load_stream(args: argparse.Namespace, seed: int) -> list[Task]:
    if args.tasks:
        stream = file_stream(args.tasks, seed, args.held_out_fraction)
    elif args.model != TINY:
        stream = real_stream(seed, args.train_size, args.held_out, MODELS[args.model].chat, args.stream)
    else:
        stream = built_in_stream(args.stream, seed, args.train_size, args.held_out)
    return stream[: args.task_count]


def _progress(strategy: str, run: dict) -> None:
    kept = f" general kept {run['general_kept']:.3f}" if run.get("general_kept") is not None else ""
    print(f"{strategy} seed {run['seed']}: ACC {run['acc']:.3f} BWT {run['bwt']:+.3f}{kept} "
          f"({run['train_seconds']:.1f} s training)", file=sys.stderr, flush=True)


def _base(args: argparse.Namespace):
    """(model, tokenizer, general records, general check, the base's figures)."""
    if args.model != TINY:
        from bench.continual import real

        model, tokenizer = real.load_base(args.model)
        checker = real.RealGeneralCheck(model, tokenizer, args.general_items)
        return model, tokenizer, real.general_records(), checker, checker.summary()
    general = general_task(args.held_out)
    model, tokenizer = build_base(args.hidden, general, args.base_epochs, args.lr, args.device)
    summary = {"general": exact_match(model, tokenizer, general.held_out),
               "parameters": sum(p.numel() for p in model.parameters())}
    return model, tokenizer, general, tiny_general_check(general), summary


def _result(args: argparse.Namespace, runs: dict[str, list[dict]], task_names: list[str], retention: dict,
            base_summary: dict, parameters: int) -> dict:
    strategies = {name: {**aggregate(found), "runs": found} for name, found in runs.items() if found}
    return {
        "stream": {"name": "files" if args.tasks else args.stream if args.model == TINY else f"real-{args.stream}",
                   "files": args.tasks, "tasks": task_names,
                   "train_records": [len(t.train) for t in args.streams[args.seeds[0]]],
                   "held_out_records": [len(t.held_out) for t in args.streams[args.seeds[0]]]},
        "model": args.model,
        "settings": {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
                     "replay_per_task": args.replay_per_task, "seeds": args.seeds, "threads": args.threads,
                     "retention": retention,
                     **({"hidden": args.hidden, "base_epochs": args.base_epochs} if args.model == TINY else
                        {"general_items": args.general_items})},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "device": args.device or ("cuda" if torch.cuda.is_available() else "cpu")},
        "via_api": args.via_api,
        "memory_measure": None if args.via_api else memory_measure(args.device),
        "cost_measure": ("jobs' seconds, created -> finished (load, train, evaluate, save)" if args.via_api
                         else "seconds inside training calls, evaluation excluded"),
        "base": {**base_summary, "parameters": parameters},
        "complete": all(len(found) == len(args.seeds) for found in runs.values()),
        "strategies": strategies,
    }


def _write(out: Path, result: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1))
    plots.write_heatmaps(result["strategies"], result["stream"]["tasks"], out)
    plots.write_cost_chart(result["strategies"], out)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    retention = {k: v for k, v in (("basis", args.basis), ("energy", args.energy),
                                   ("reference_share", args.reference_share),
                                   ("reference_energy", args.reference_energy)) if v is not None}
    settings = TrainSettings(args.epochs, args.lr, args.batch_size, args.replay_per_task, args.device, retention)
    base, tokenizer, general, check_general, base_summary = _base(args)
    general_before = base_summary["general"]
    task_names = [t.name for t in args.streams[args.seeds[0]]]
    parameters = sum(p.numel() for p in base.parameters())

    runs: dict[str, list[dict]] = {name: [] for name in args.strategies}
    if args.via_api:
        save_base(base, tokenizer, args.base_dir)
        with client_for(args.via_api, args.api_key) as client:
            for strategy in args.strategies:
                for seed in args.seeds:
                    try:
                        run = run_stream_via_api(client, strategy, args.base_dir, general, args.streams[seed],
                                                 settings, seed, job_timeout=args.job_timeout)
                    except ApiError as exc:
                        raise SystemExit(f"bench.continual --via-api: {exc}") from exc
                    runs[strategy].append(run)
                    _progress(strategy, run)
    else:
        for strategy in args.strategies:
            for seed in args.seeds:
                # A real model's runs stay in this process: a child forked after torch started its thread
                # pool (the base's check runs on --threads 2) waits forever on a lock no thread holds.
                fork = memory_measure(args.device) == CPU_MEMORY and (args.model == TINY or args.threads == 1)
                run = isolated(run_stream, strategy, base, tokenizer, general, args.streams[seed], settings, seed,
                               check_general, fork=fork)
                run.update(run_metrics(run, task_names, general_before))
                runs[strategy].append(run)
                _progress(strategy, run)
            if args.out:  # a long run's figures so far survive its interruption ("complete": false)
                _write(args.out, _result(args, runs, task_names, retention, base_summary, parameters))

    result = _result(args, runs, task_names, retention, base_summary, parameters)
    print(text_report(result["strategies"], task_names))
    if args.out:
        _write(args.out, result)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
