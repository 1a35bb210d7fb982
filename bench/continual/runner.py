"""One strategy through one stream with one seed: the accuracy matrix, wall time and peak memory.

Each run is forked into a process of its own (where the platform forks), so its peak memory is its
own and no run inherits another's allocator state. Peak memory on CPU is the growth of the process's
resident set over the run (VmHWM, reset at the start, minus VmRSS at the start); on CUDA it is
``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import copy
import multiprocessing
import resource
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from bench.continual.strategies import TrainSettings, kept_room, learn
from bench.continual.streams import Task
from worker.engine import TrainConfig, train_task
from worker.engine.data import batches, encode
from worker.tiny import build_tiny_causal_lm

CPU_MEMORY = "rss_growth: VmHWM (reset at the start) − VmRSS at the start of the run, own forked process"
CUDA_MEMORY = "torch.cuda.max_memory_allocated over the run"


def build_base(hidden: int, general: Task, epochs: int, lr: float, device: str | None = None):
    """The tiny Llama every run starts from, after learning the general task (the same for every seed)."""
    model, tokenizer = build_tiny_causal_lm(hidden=hidden, layers=2, heads=4, intermediate=2 * hidden, seed=0)
    config = TrainConfig(strategy="full", n_epochs=epochs, learning_rate=lr, seed=0, device=device)
    return train_task(model, tokenizer, general.train, config).model, tokenizer


def memory_measure(device: str | None) -> str:
    return CUDA_MEMORY if torch.device(device or _default_device()).type == "cuda" else CPU_MEMORY


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@torch.no_grad()
def exact_match(model, tokenizer, records: list[dict]) -> float:
    """Share of records whose greedy completion (and eos) is exactly right.

    Teacher-forced argmax of every completion token equals greedy decoding's output: greedy produces
    the reference exactly when each of its tokens is the argmax given the correct prefix.
    """
    model.eval()
    device = next(model.parameters()).device
    hits = 0
    for batch in batches(encode(records, tokenizer, "causal", 128), 64, tokenizer.pad_token_id):
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        predicted, targets = logits[:, :-1].argmax(-1), batch["labels"][:, 1:]
        hits += int(((predicted == targets) | (targets == -100)).all(dim=1).sum())
    return hits / len(records)


class PeakMemory:
    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.measure = CUDA_MEMORY if self.cuda else CPU_MEMORY

    @staticmethod
    def _status(field: str) -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        raise KeyError(field)

    def start(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
            self.baseline, self.peak = self._status("VmRSS"), lambda: self._status("VmHWM")
        except OSError:  # not Linux, or not allowed: the process's lifetime peak (ru_maxrss, KiB)
            self.baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            self.peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def megabytes(self) -> float:
        if self.cuda:
            return torch.cuda.max_memory_allocated() / 2**20
        return max(0.0, self.peak() - self.baseline)


# model, tokenizer -> {"score": general ability, and where measured the OPTIONAL_GENERAL figures}: the tiny
# model's exact match on its general task, or the real model's suites (bench.continual.real).
GeneralCheck = Callable[..., dict]
OPTIONAL_GENERAL = ("general_kept", "perplexity_ratio", "general_seconds")


def tiny_general_check(general: Task) -> GeneralCheck:
    return lambda model, tokenizer: {"score": exact_match(model, tokenizer, general.held_out)}


def run_stream(strategy: str, base, tokenizer, general: Task, tasks: list[Task],
               settings: TrainSettings, seed: int, check_general: GeneralCheck) -> dict:
    """Learn ``tasks`` in order from ``base``; after each, score every task and general ability.
    ``general.train``: the general records the strategies may use (replay's buffer, the reference prior)."""
    device = torch.device(settings.device or _default_device())
    meter = PeakMemory(device)
    model = copy.deepcopy(base).to(device)
    meter.start()
    started = time.monotonic()
    base_row = [exact_match(model, tokenizer, t.held_out) for t in tasks]
    matrix, checks, kept, train_seconds = [], [], [], 0.0
    earlier: list[list[dict]] = []
    for index, task in enumerate(tasks, start=1):
        began = time.monotonic()
        result = learn(strategy, model, tokenizer, task.train, earlier, general.train, settings,
                       seed=1000 * seed + index)
        train_seconds += time.monotonic() - began
        model = result.model
        kept.append(kept_room(result.retention))
        earlier.append(task.train)
        matrix.append([exact_match(model, tokenizer, t.held_out) for t in tasks])
        checks.append(check_general(model, tokenizer))
        print(f"{strategy} seed {seed}: task {index}/{len(tasks)} {task.name}: {matrix[-1][index - 1]:.2f}, "
              f"general {checks[-1]['score']:.3f} ({time.monotonic() - began:.0f} s)", file=sys.stderr, flush=True)
    run = {
        "seed": seed,
        "matrix": matrix,
        "general": [c["score"] for c in checks],
        "base_row": base_row,
        "train_seconds": train_seconds,
        "wall_seconds": time.monotonic() - started,
        "peak_memory_mb": meter.megabytes(),
        "memory_measure": meter.measure,
        "kept_room": kept,  # each version's kept_room(), in task order
    }
    # After each task, where the check measures them (run_metrics reports the last, or the mean of seconds).
    run["general_after_each_task"] = {key: [c.get(key) for c in checks] for key in OPTIONAL_GENERAL
                                      if all(c.get(key) is not None for c in checks)}
    return run


def _child(connection, function, args) -> None:
    try:
        connection.send(("ok", function(*args)))
    except BaseException:  # noqa: BLE001 - everything goes back to the parent as text
        connection.send(("error", traceback.format_exc()))
    finally:
        connection.close()


def isolated(function, *args, fork: bool = True):
    """``function(*args)`` in a forked process of its own; in this one without ``fork``, or where the
    platform cannot fork (CUDA cannot be used in a child forked after the parent initialised it)."""
    if not fork or "fork" not in multiprocessing.get_all_start_methods():
        return function(*args)
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(sender, function, args))
    process.start()
    sender.close()
    try:
        status, payload = receiver.recv()
    except EOFError:
        status, payload = "error", "the run's process died without a result"
    process.join()
    if status == "error":
        raise RuntimeError(f"{function.__name__} failed (exit code {process.exitcode}):\n{payload}")
    return payload
