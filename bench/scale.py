"""A job's memory and time at Llama-3-8B layer shapes, phase by phase, and what they come to at 32 layers on 8 ranks.

    python -m bench.scale                         # 8B layer shapes (hidden 4096, intermediate 14336, 32 heads,
                                                  # 8 kv heads, vocab 1024): runs 1x1, 2x1, 1x2 (layers x ranks)
    python -m bench.scale --shapes toy            # the same at toy shapes, in seconds (the smoke test's)
    python -m bench.scale --runs 1x1,4x1 --device cuda --deadline 400   # one GPU (bench/gpu_checks.sh)

Each run is one job of plain full fine-tuning ("full") or of the method ("adaptive_svd", its defaults: the
activations basis with earlier tasks' records and the reference set) on a bfloat16 base with random weights
(time and memory do not depend on the values), as the worker runs it: ``load_model_and_tokenizer``, then
``train_task`` (phases from its ``on_phase``: calibrating, decomposing, training; step times from
``on_progress``), then ``round_to`` and ``save_checkpoint`` in the base's dtype. More than one rank is
``TrainConfig(devices=R, sharding="fsdp")``: FSDP2 over gloo on the CPU. Nothing here reaches inside a
strategy, so a rerun measures whatever the engine does then.

Memory: each process's peak resident set size (Linux ``VmHWM``, reset at every phase boundary through
``/proc/PID/clear_refs``, so a phase's peak is exact and no sampling can miss it). It counts everything the
process holds: weights, optimizer state, activations, the torch runtime, and the pages of a safetensors file
mapped while it loads. On CUDA the per-rank figure is the allocator's peak instead (``max_memory_allocated``).
With several ranks the launching process ("host") holds the model too, and the ranks load it from its scratch
copy inside the engine's calibrating phase, which is where the ranks' loading shows.

Each run is its own process, stopped at ``--deadline`` seconds: a run that reaches it reports the phase it
was in and the figures of the phases before. The leak into the kept subspaces is measured on the one-rank
run, after the training steps, against the projectors the strategy built (``bench.leak.projector_leak``):
on the float32 master weights (the method's exactness) and on the weights as the version stores them.

The memory model (``extrapolate``): a process's peak in a phase is
    M(L, R) = fixed + L * (replicated + sharded / R)
fitted on 1 and on 2 ranks. Where a rank count has runs of two layer counts, the slope between them is the
per-layer cost and ``fixed`` what is left at the smaller one (the runtime, and what does not grow with
layers: the one block FSDP gathers at a time, the bench's small vocabulary). Where it has one, ``fixed`` is
the runtime and everything else counts per layer, an upper bound where one-off costs are large. The terms
that halve from 1 to 2 ranks are ``sharded``, the rest ``replicated``. The ranks' phases are calibrate,
decompose and train_step; load and save are the launching process's, whole. It is checked against every run
it was not fitted on, then applied to Llama-3-8B: 32 layers, 8 ranks, and its 128256-token vocabulary's
embedding and LM head (1.05 B parameters) at the same bytes per parameter as a layer's. Last line is JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

STRATEGIES = ("full", "adaptive_svd")
PHASES = ("load", "calibrate", "decompose", "train_step", "save")
RANK_PHASES = ("calibrate", "decompose", "train_step")  # with several ranks, the ranks run these
ENGINE_PHASES = {"calibrating": "calibrate", "decomposing": "decompose", "training": "train_step"}
SHAPES = {
    "8b": {"hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8},
    "toy": {"hidden_size": 64, "intermediate_size": 224, "num_attention_heads": 4, "num_key_value_heads": 2},
}
VOCAB = 1024
TARGET = {"layers": 32, "ranks": 8, "vocab": 128256, "gpu_bytes": 80 * 10**9, "job_steps": 500}
DEFAULT_RUNS = "1x1,2x1,1x2"
# bench.step_overhead's: large enough that after a few steps ‖ΔW‖ stands well above the float32 rounding of W
# (|W| 2⁻²⁴ an element), the floor of any leak measured on the weights.
LEARNING_RATE = 1e-3


@dataclass(frozen=True)
class Run:
    strategy: str
    layers: int
    ranks: int

    @property
    def name(self) -> str:
        return f"{self.strategy}/{self.layers}x{self.ranks}"


# --- the base model -----------------------------------------------------------------------------------------

def build_base(path: Path, shapes: str, layers: int) -> Path:
    """A bfloat16 Llama base at ``shapes`` with ``layers`` decoder layers (random weights), saved with the tiny
    byte tokenizer, as a real 8B base is stored."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from worker.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    config = LlamaConfig(vocab_size=VOCAB, num_hidden_layers=layers, max_position_embeddings=4096,
                         tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id, **SHAPES[shapes])
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def layer_parameters(shapes: str) -> int:
    s = SHAPES[shapes]
    hidden, inter = s["hidden_size"], s["intermediate_size"]
    kv = hidden // s["num_attention_heads"] * s["num_key_value_heads"]
    return 2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * inter + 2 * hidden


def records(tag: str, count: int, length: int) -> list[dict]:
    letters = "abcdefghijklmnopqrstuvwxyz "
    return [{"prompt": f"{tag} {i}: " + "".join(letters[(i * 7 + j * 3) % 27] for j in range(length)),
             "completion": " " + "".join(letters[(i + j) % 26] for j in range(8))} for i in range(count)]


# --- memory -------------------------------------------------------------------------------------------------

def _status_bytes(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def _rank_pids() -> list[int]:
    """The training ranks: children of the fork server this process started (``worker.engine.distributed``)."""
    return sorted(rank for child in _children(os.getpid()) for rank in _children(child))


class PhaseMeter:
    """Seconds and peak memory of each phase, for this process (the host) and the training ranks."""

    def __init__(self, cuda: bool, record) -> None:
        self.cuda, self.record = cuda, record
        self.phases: dict[str, dict] = {}
        self.current: str | None = None
        self.running: dict | None = None  # the current phase's figures so far
        self.started = 0.0
        self.peaks: dict[int, int] = {}
        self.rank_runtime: dict[int, int] = {}  # each rank's resident memory when first seen, before it loads
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def _read(self) -> None:
        # VmHWM is the peak since the last reset, so reading it often only keeps a rank's figure after it exits.
        for pid in (os.getpid(), *_rank_pids()):
            peak = _status_bytes(pid, "VmHWM")
            if peak is not None:
                self.peaks[pid] = max(self.peaks.get(pid, 0), peak)
            if pid != os.getpid() and pid not in self.rank_runtime and (resident := _status_bytes(pid, "VmRSS")):
                self.rank_runtime[pid] = resident

    def _watch(self) -> None:
        ticks = 0
        while not self.stopped.wait(0.05):
            with self.lock:
                self._read()
                ticks += 1
                if ticks % 20 == 0 and self.current is not None:  # a run stopped at its deadline keeps this much
                    self.running = {"phase": self.current, "seconds": round(time.monotonic() - self.started, 1),
                                    "host_peak_bytes": self.peaks.get(os.getpid()),
                                    "rank_peak_bytes": [v for k, v in sorted(self.peaks.items()) if k != os.getpid()]
                                    or None}
                    self.record()

    def enter(self, phase: str | None) -> None:
        import torch

        with self.lock:
            self._read()
            if self.current is not None:
                host = self.peaks.pop(os.getpid(), None)
                ranks = [self.peaks[pid] for pid in sorted(self.peaks)]
                entry = {"seconds": round(time.monotonic() - self.started, 3), "host_peak_bytes": host,
                         "rank_peak_bytes": ranks or None}
                if self.cuda:
                    entry["cuda_peak_bytes"] = torch.cuda.max_memory_allocated()
                self.phases[self.current] = {**self.phases.get(self.current, {}), **entry}
                self.record()
            for pid in (os.getpid(), *_rank_pids()):
                with contextlib.suppress(OSError):  # a rank that just exited
                    Path(f"/proc/{pid}/clear_refs").write_text("5")
            if self.cuda:
                torch.cuda.reset_peak_memory_stats()
            self.peaks = {}
            self.current, self.started, self.running = phase, time.monotonic(), None

    def note(self, phase: str, **values) -> None:
        self.phases.setdefault(phase, {}).update(values)


# --- one run, in its own process --------------------------------------------------------------------------

def run_one(run: Run, base: Path, args, out: Path) -> None:
    import torch

    from app.jobs.strategies import Retention
    from bench.leak import projector_leak
    from worker.checkpoints import checkpoint_key, save_checkpoint
    from worker.engine import TrainConfig, dtype_name, load_model_and_tokenizer, round_to, stored_dtype, train_task
    from worker.engine.strategies import get as get_strategy

    torch.set_num_threads(args.threads)
    cuda = args.device == "cuda"
    result: dict = {"run": run.name, "strategy": run.strategy, "layers": run.layers, "ranks": run.ranks,
                    "runtime_bytes": _status_bytes(os.getpid(), "VmRSS"), "finished": False}

    def record() -> None:
        result["phases"] = meter.phases
        result["running"] = meter.running
        result["rank_runtime_bytes"] = min(meter.rank_runtime.values(), default=None)
        out.write_text(json.dumps(result))

    meter = PhaseMeter(cuda, record)
    meter.enter("load")
    model, tokenizer, _kind = load_model_and_tokenizer(base, device=args.device)
    dtype = stored_dtype(base)

    # The strategy's own preparation, kept to measure the leak against its projectors (one process only).
    strategy = get_strategy(run.strategy)
    prepared: list = []

    def keep(*a, **k):
        prepared.append(type(strategy).prepare(strategy, *a, **k))
        return prepared[-1]

    strategy.prepare = keep  # type: ignore[method-assign]  # this process runs nothing else
    steps: list[float] = []
    last = [0.0]

    def on_phase(name: str) -> None:
        meter.enter(ENGINE_PHASES[name])
        last[0] = time.monotonic()

    def on_progress(_info) -> None:
        now = time.monotonic()
        steps.append(round(now - last[0], 3))
        last[0] = now

    config = TrainConfig(strategy=run.strategy, n_epochs=1, batch_size=args.batch, learning_rate=LEARNING_RATE,
                         warmup_ratio=0.0, max_length=args.length + 32, retention=Retention(), device=args.device,
                         devices=run.ranks, sharding="fsdp")
    trained = train_task(model, tokenizer, records("new", args.batch * args.steps, args.length), config,
                         tasks_learned=1, prior_records=records("old", args.calibration, args.length),
                         reference_texts=[r["prompt"] for r in records("general", args.calibration, args.length)],
                         on_phase=on_phase, on_progress=on_progress)
    meter.note("train_step", step_seconds=steps, trained_tokens=trained.trained_tokens)
    if prepared and run.ranks == 1:
        meter.enter("leak")  # not a job's phase: kept out of train_step's and save's figures
        result["leak"] = _leaks(prepared[-1], trained.model, base, dtype, trained.steps, projector_leak)
    prepared.clear()  # its optimizer state, which the engine lets go of when training ends
    _return_freed_memory()
    meter.enter("save")
    round_to(trained.model, dtype)
    save_checkpoint(trained.model, tokenizer, checkpoint_key("scale", 2), dtype=dtype)
    meter.enter(None)
    meter.stopped.set()
    result.update(finished=True, dtype=dtype_name(dtype),
                  summary=trained.retention.get("summary", {}))
    record()


def _return_freed_memory() -> None:
    """Hand the heap's freed pages back to the system, so the next phase's peak resident set starts from what
    is alive: pages freed before the save phase (after the bench's own leak measurement, which loads a copy of
    the base) stayed resident under its peak on one rank (1.19x full's at 3 layers, then 1.04x)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _leaks(prepared, model, base: Path, dtype, steps: int, projector_leak) -> dict | None:
    """The worst matrix's leak, ‖KᵀΔW‖/‖ΔW‖, on the float32 weights and as stored in the base's dtype.

    Beside it, that matrix's float32 floor: each step's W + ΔW rounds every element by up to |W| 2⁻²⁴ in any
    direction, so a leak near 2⁻²⁴ ‖W‖ √steps / ‖ΔW‖ is the storage's, not the projection's.
    """
    from safetensors import safe_open

    projectors = getattr(prepared.optimizer, "projectors", None)
    if not projectors:
        return None
    names = {param: name for name, param in model.named_parameters()}
    trained_leak, stored_leak, floor = 0.0, 0.0, 0.0
    files = [safe_open(str(f), "pt") for f in sorted(base.glob("*.safetensors"))]
    for param, projector in projectors.items():
        name = names[param]
        weight = param.detach()
        original = next(f.get_tensor(name) for f in files if name in f.keys()).to(weight.device).float()  # noqa: SIM118
        delta = weight - original
        stored = weight.to(dtype).float() - original
        leak = projector_leak(projector, delta)
        if leak >= trained_leak:
            trained_leak, floor = leak, float(2**-24 * original.norm() * steps**0.5 / delta.norm())
        if stored.any():
            stored_leak = max(stored_leak, projector_leak(projector, stored))
    return {"float32": trained_leak, "float32_floor": floor, "stored_dtype": stored_leak,
            "matrices": len(projectors)}


# --- the driver ---------------------------------------------------------------------------------------------

def parse_runs(text: str) -> list[tuple[int, int]]:
    return [(int(layers), int(ranks)) for layers, ranks in (item.split("x") for item in text.split(","))]


def launch(run: Run, base: Path, args, scratch: Path) -> dict:
    """Run ``run`` in its own process; stop it (and its ranks) at the deadline, keeping the phases it finished."""
    out = scratch / f"{run.strategy}-{run.layers}x{run.ranks}.json"
    home = scratch / f"home-{run.strategy}-{run.layers}x{run.ranks}"
    command = [sys.executable, "-m", "bench.scale", "--child", f"{run.strategy}:{run.layers}:{run.ranks}",
               "--base", str(base), "--child-out", str(out), *args.passed]
    started = time.monotonic()
    process = subprocess.Popen(command, env={**os.environ, "SCULPT_HOME": str(home)}, start_new_session=True)
    try:
        code = process.wait(timeout=args.deadline)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the run's own session: it, its fork server and its ranks
        process.wait()
        code = None
    result = json.loads(out.read_text()) if out.is_file() else {"run": run.name, "phases": {}}
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    if code is None:
        result["stopped"] = f"deadline of {args.deadline}s reached"
    elif code:
        result["stopped"] = f"exited with code {code}"
    shutil.rmtree(home, ignore_errors=True)  # the run's saved version
    return result


def complete_phases(result: dict) -> dict:
    """Every phase, in order: one the run did not reach or the strategy has none of is marked so."""
    phases = result.get("phases", {})
    running = result.pop("running", None)
    if running and not result.get("finished"):  # the phase the deadline cut: its figures until then
        phases[running.pop("phase")] = {**running, "unfinished": True}
    reached = list(phases)
    out = {}
    for phase in PHASES:
        if phase in phases:
            out[phase] = phases[phase]
        elif result.get("finished"):
            out[phase] = {"seconds": 0.0, "host_peak_bytes": None, "rank_peak_bytes": None, "ran": False}
        else:
            out[phase] = {"seconds": None, "host_peak_bytes": None, "rank_peak_bytes": None,
                          "ran": False, "not_reached": True, "stopped_in": reached[-1] if reached else None}
    result["phases"] = out
    return result


def rank_peak(phase: dict, cuda: bool) -> int | None:
    """A rank's peak in a phase: the worst rank's, else (one process, or before the ranks start) the host's."""
    if cuda and phase.get("cuda_peak_bytes") is not None:
        return phase["cuda_peak_bytes"]
    return max(phase["rank_peak_bytes"]) if phase.get("rank_peak_bytes") else phase.get("host_peak_bytes")


def _fixed(run: dict, phase: str, cuda: bool) -> int:
    """The runtime under a phase's peak: the ranks' (forked from the engine's fork server) or the host's."""
    if cuda:
        return 0
    ranks = run["phases"][phase].get("rank_peak_bytes") and run.get("rank_runtime_bytes")
    return ranks or run["runtime_bytes"]


def _fit(runs: dict, ranks: int, phase: str, cuda: bool) -> tuple[float, int, list[int]] | None:
    """Bytes per layer and fixed bytes of a phase's peak on ``ranks`` ranks, and the layer counts fitted.

    With two layer counts the slope between them is the per-layer cost and what is left at the smaller one
    is fixed (the runtime, and what does not grow with layers: the one block FSDP gathers, the bench's small
    vocabulary); with one, everything above the runtime counts per layer, an upper bound."""
    counts = sorted(layers for layers, r in runs if r == ranks and rank_peak(runs[layers, r]["phases"][phase], cuda))
    if not counts:
        return None
    a = counts[0]
    peak_a = rank_peak(runs[a, ranks]["phases"][phase], cuda)
    if len(counts) == 1:
        fixed = _fixed(runs[a, ranks], phase, cuda)
        return (peak_a - fixed) / a, fixed, [a]
    b = counts[1]
    slope = (rank_peak(runs[b, ranks]["phases"][phase], cuda) - peak_a) / (b - a)
    return slope, round(peak_a - a * slope), [a, b]


def extrapolate(results: list[dict], shapes: str, cuda: bool) -> dict:
    """The memory model (module docstring) per strategy and phase, checked against the runs it was not fitted on."""
    per_layer_params = layer_parameters(shapes)
    vocab_params = 2 * (TARGET["vocab"] - VOCAB) * SHAPES[shapes]["hidden_size"]
    model: dict = {"formula": "M(L, R) = fixed + L * (replicated + sharded / R), per rank and phase",
                   "fixed": "fitted: what the smallest run holds beyond L layers' cost (at least the runtime, "
                            "0 for the CUDA allocator)",
                   "target": TARGET, "layer_parameters": per_layer_params,
                   "vocabulary_parameters_added": vocab_params, "strategies": {}}
    for strategy in STRATEGIES:
        runs = {(r["layers"], r["ranks"]): r for r in results if r.get("strategy") == strategy}
        smallest = min((layers for layers, ranks in runs if ranks == 1), default=None)
        if smallest is None:
            continue
        phases = {}
        for phase in PHASES:
            one = _fit(runs, 1, phase, cuda)
            if one is None:
                phases[phase] = {"note": "not measured (not reached, or the strategy has no such phase)"}
                continue
            # Loading and saving are the launching process's, whole, however many ranks train.
            two = _fit(runs, 2, phase, cuda) if phase in RANK_PHASES else None
            # Only what shards shrinks with ranks: from 1 to 2 ranks it halves (less is measurement noise).
            sharded = max(0.0, 2 * (one[0] - two[0])) if two else 0.0
            replicated = one[0] - sharded
            fitted = {(layers, 1) for layers in one[2]} | {(layers, 2) for layers in (two[2] if two else [])}

            def predict(layers: int, ranks: int, extra_params: int = 0, *, r=replicated, s=sharded,
                        f=(one[1], two[1] if two else one[1])) -> float:
                per_layer = r + s / ranks
                return f[ranks > 1] + layers * per_layer + extra_params * per_layer / per_layer_params

            checks = [{"run": f"{layers}x{ranks}", "measured_bytes": measured,
                       "predicted_bytes": round(predict(layers, ranks)),
                       "error": round(predict(layers, ranks) / measured - 1, 3)}
                      for (layers, ranks), run in sorted(runs.items())
                      if (layers, ranks) not in fitted and (measured := rank_peak(run["phases"][phase], cuda))]
            target = predict(TARGET["layers"], TARGET["ranks"], vocab_params)
            unfinished = any(runs[key]["phases"][phase].get("unfinished") for key in fitted)
            phases[phase] = {"process": "rank" if phase in RANK_PHASES else "host", "lower_bound": unfinished,
                             "fitted_on": sorted(f"{layers}x{ranks}" for layers, ranks in fitted),
                             "fixed_bytes": two[1] if two else one[1],
                             "replicated_bytes_per_layer": round(replicated),
                             "sharded_bytes_per_layer": round(sharded), "sharding_measured": two is not None,
                             "checks": checks, "target_rank_bytes": round(target),
                             "target_rank_gb": round(target / 1e9, 1)}
        model["strategies"][strategy] = phases
        model["strategies"][strategy]["time"] = _time_model(runs[smallest, 1], smallest)
    return model


def _time_model(one: dict, layers: int) -> dict:
    """Preparation against training, per layer on one rank: both split over ranks and scale with layers, so
    their ratio is the target's (assumed: a step of the same tokens a rank as here, ranks splitting evenly)."""
    phases = one["phases"]
    prep = [phases[p]["seconds"] for p in ("calibrate", "decompose")]
    steps = phases["train_step"].get("step_seconds") or []
    if any(s is None for s in prep) or not steps:
        stopped = next((p for p in PHASES if phases[p].get("not_reached")), None)
        return {"note": f"not measured: the run stopped before {stopped}",
                "preparation_seconds_at_least": sum(s for s in prep if s is not None)}
    step = statistics.median(steps)
    job = TARGET["job_steps"] * step
    return {"preparation_seconds_per_layer": round(sum(prep) / layers, 2),
            "step_seconds_per_layer": round(step / layers, 3),
            "preparation_share_of_500_step_job": round(sum(prep) / (sum(prep) + job), 4)}


def compare(results: list[dict], cuda: bool) -> dict:
    """adaptive_svd's per-rank peak over full's in each phase both ran, under the same layers and ranks, and its
    decomposition's seconds on 2 ranks over 1."""
    ratios = {}
    by_run = {(r["strategy"], r["layers"], r["ranks"]): r for r in results}
    for (strategy, layers, ranks), ours in by_run.items():
        theirs = by_run.get(("full", layers, ranks))
        if strategy != "adaptive_svd" or theirs is None:
            continue
        row: dict = {"lower_bounds": [p for p in PHASES if ours["phases"][p].get("unfinished")]}
        for phase in PHASES:
            a, b = rank_peak(ours["phases"][phase], cuda), rank_peak(theirs["phases"][phase], cuda)
            row[phase] = round(a / b, 3) if a and b and theirs["phases"][phase].get("ran", True) else None
        ratios[f"{layers}x{ranks}"] = row
    decompose = {}
    for (strategy, layers, ranks), run in by_run.items():
        one = by_run.get((strategy, layers, 1))
        if strategy == "adaptive_svd" and ranks == 2 and one:
            a, b = (r["phases"]["decompose"] for r in (run, one))
            done = a["seconds"] and b["seconds"] and not (a.get("unfinished") or b.get("unfinished"))
            decompose[f"{layers} layers"] = round(a["seconds"] / b["seconds"], 3) if done else None
    return {"peak_ratio_adaptive_over_full": ratios, "decompose_seconds_2_over_1_rank": decompose}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", choices=list(SHAPES), default="8b")
    parser.add_argument("--runs", default=DEFAULT_RUNS, help="layers x ranks, comma-separated (default %(default)s)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--steps", type=int, default=2, help="training steps a run")
    parser.add_argument("--batch", type=int, default=2, help="sequences a step (split over the ranks)")
    parser.add_argument("--length", type=int, default=48, help="about the tokens of each record")
    parser.add_argument("--calibration", type=int, default=8,
                        help="records of earlier tasks, and texts of the reference set")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--deadline", type=float, default=150.0, help="seconds a run may take")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--base", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        strategy, layers, ranks = args.child.split(":")
        run_one(Run(strategy, int(layers), int(ranks)), args.base, args, args.child_out)
        return {}
    args.passed = [f"--{k}={getattr(args, k)}" for k in ("device", "steps", "batch", "length", "calibration",
                                                         "threads")]
    grid = parse_runs(args.runs)
    results = []
    with tempfile.TemporaryDirectory(prefix="sculpt-scale-") as folder:
        scratch = Path(folder)
        bases = {layers: build_base(scratch / f"base-{layers}", args.shapes, layers)
                 for layers in sorted({layers for layers, _ in grid})}
        for strategy in args.strategies.split(","):
            for layers, ranks in grid:
                result = complete_phases(launch(Run(strategy, layers, ranks), bases[layers], args, scratch))
                print(f"{result['run']}: {'finished' if result.get('finished') else result.get('stopped')} "
                      f"in {result['wall_seconds']}s", file=sys.stderr, flush=True)
                results.append(result)
    cuda = args.device == "cuda"
    report = {"benchmark": "scale", "shapes": {"name": args.shapes, **SHAPES[args.shapes], "vocab": VOCAB},
              "memory": "peak resident set (VmHWM) per process and phase" if not cuda
              else "CUDA allocator peak per phase (ranks); host: peak resident set",
              "settings": {k: getattr(args, k) for k in ("device", "steps", "batch", "length", "calibration",
                                                         "threads", "deadline")},
              "runs": results, "compare": compare(results, cuda), "extrapolated": extrapolate(results, args.shapes,
                                                                                             cuda)}
    text = json.dumps(report)
    if args.out:
        args.out.write_text(text)
    print(text)
    return report


if __name__ == "__main__":
    main()
