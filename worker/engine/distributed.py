"""One job trained by several processes (``TrainConfig.devices``), one per GPU or, without CUDA, on the CPU.

The caller's process starts the ranks, hands them the model through a scratch folder (``$TMPDIR``), and
supervises: it relays rank 0's phases and progress to the caller's callbacks and the caller's cancel to
rank 0, which tells the others at the end of each step. Only rank 0 reports and writes the trained weights,
which are loaded back into the caller's model. However the job ends (done, failed, cancelled, a rank
killed, the caller dying) no rank outlives it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import queue
import select
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict

import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from transformers.utils import logging as transformers_logging

from app.core.children import process_alive
from app.core.logsafe import describe

from .config import (
    NonFiniteLoss,
    OnPhase,
    OnProgress,
    ProgressInfo,
    SettingsError,
    ShouldCancel,
    TrainConfig,
    TrainingCancelled,
    TrainResult,
)
from .world import World, joined

if TYPE_CHECKING:
    from transformers import PreTrainedModel

log = logging.getLogger("sculpt.worker")

POLL_SECONDS = 0.2
# How long finished ranks get to leave on their own, and a failed rank's report to arrive, before the rest go.
GRACE_SECONDS = 5.0
# How long a rank's failure waits for news of a peer killed meanwhile, its likely cause.
KILL_NOTICE_SECONDS = 2.0
# Failures the worker maps to a job error of their own keep their type across the process boundary.
PASSED_THROUGH = (TrainingCancelled, NonFiniteLoss, SettingsError, MemoryError, torch.OutOfMemoryError)


class RankFailed(RuntimeError):
    """A training process failed or died; the message says which one and why."""


class TrainRank(Protocol):
    """What each rank runs (``trainer.train_encoded``): train ``model`` as ``world``'s rank."""

    def __call__(self, model: Any, data: Any, config: TrainConfig, *, world: World, tasks_learned: int,
                 on_phase: OnPhase, on_progress: OnProgress | None,
                 should_cancel: ShouldCancel | None) -> TrainResult: ...


class RankOutcome(TypedDict):
    """Rank 0's result, but for the weights (those go through ``trained.safetensors``)."""

    retention: dict[str, Any]
    steps: int
    trained_tokens: int
    final_loss: float


# What the ranks send the launching process over the queue: rank 0 its phases, progress and outcome,
# any rank its failure (pickled; the exception itself when the worker maps its type, else a RankFailed).
RankMessage = (tuple[Literal["phase"], str] | tuple[Literal["progress"], ProgressInfo]
               | tuple[Literal["done"], RankOutcome] | tuple[Literal["failed"], Exception])


def _report(messages: Any, message: RankMessage) -> None:
    messages.put(message)


@dataclass
class _Job:
    """What every rank needs; pickled once per rank."""

    train: TrainRank  # trainer.train_encoded, passed in so this module does not import the trainer
    model_class: type[PreTrainedModel]
    dtype: torch.dtype
    folder: str
    data: Any
    config: TrainConfig
    tasks_learned: int
    threads: int
    worker: int  # the process that launched the job


def rank_devices(config: TrainConfig) -> list[torch.device]:
    """Consecutive GPUs from the configured one (``cuda`` means ``cuda:0``), else the CPU for every rank."""
    first = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if first.type != "cuda":
        return [first] * config.devices
    start = first.index or 0
    if start + config.devices > torch.cuda.device_count():
        raise ValueError(
            f"{config.devices} devices from cuda:{start} asked for, but this process sees "
            f"{torch.cuda.device_count()} GPUs"
        )
    return [torch.device("cuda", start + rank) for rank in range(config.devices)]


def launch(train: TrainRank, model: Any, data: Any, config: TrainConfig, *, tasks_learned: int, on_phase: OnPhase,
           on_progress: OnProgress | None, should_cancel: ShouldCancel | None) -> TrainResult:
    devices = rank_devices(config)
    # A fork server is a fresh interpreter that never touches CUDA, so forking ranks from it is safe; it imports
    # the engine once per worker process, so later jobs' ranks start in a moment.
    context = mp.get_context("forkserver")
    context.set_forkserver_preload([train.__module__])
    with tempfile.TemporaryDirectory(prefix="sculpt-ranks-") as folder:
        model.to("cpu")  # the ranks' copies train; this one waits on the host for the result
        model.save_pretrained(Path(folder) / "base", safe_serialization=True)
        job = _Job(
            train,
            type(model),
            next(model.parameters()).dtype,
            folder,
            data,
            config,
            tasks_learned,
            max(1, torch.get_num_threads() // config.devices),
            os.getpid(),
        )
        messages, stop = context.Queue(), context.Event()
        processes = [
            context.Process(target=_rank_main, args=(rank, devices, job, messages, stop), daemon=True,
                            name=f"sculpt-rank-{rank}")
            for rank in range(config.devices)
        ]
        finished = False
        try:
            for process in processes:
                process.start()
            outcome = _supervise(processes, messages, stop, on_phase, on_progress, should_cancel)
            finished = True
            _load_parameters(model, Path(folder) / "trained.safetensors")
        finally:
            _stop(processes, GRACE_SECONDS if finished else 0.0)
    model.to(devices[0]).eval()
    model.requires_grad_(False)
    return TrainResult(model, outcome["retention"], outcome["steps"], outcome["trained_tokens"],
                       outcome["final_loss"], 0.0)


def _supervise(processes, messages, stop, on_phase: OnPhase, on_progress: OnProgress | None,
               should_cancel: ShouldCancel | None) -> RankOutcome:
    """Relay rank 0's reports until it is done; raise the first failure a rank reports or a rank's death."""
    while True:
        try:
            kind, payload = messages.get(timeout=POLL_SECONDS)
        except queue.Empty:
            _raise_if_died(processes, messages)
            kind = payload = None
        if kind == "done":
            return payload
        if kind == "failed":
            raise _cause(processes, payload)
        if kind == "phase":
            on_phase(payload)
        elif kind == "progress" and on_progress is not None:
            on_progress(payload)
        if should_cancel is not None and not stop.is_set() and should_cancel():
            stop.set()


def _cause(processes, reported: Exception) -> Exception:
    """A rank killed by a signal makes its peers fail in their collectives: report the kill instead, which
    the fork server may take a moment to learn of."""
    deadline = time.monotonic() + (KILL_NOTICE_SECONDS if isinstance(reported, RankFailed) else 0.0)
    while (killed := _killed(processes)) is None and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    return killed or reported


def _killed(processes) -> RankFailed | None:
    for rank, process in enumerate(processes):
        if process.exitcode is not None and process.exitcode < 0:
            return RankFailed(
                f"training process {rank} of {len(processes)} was killed by {signal.Signals(-process.exitcode).name} "
                "(out of host memory, or stopped by an operator?)"
            )
    return None


def _raise_if_died(processes, messages) -> None:
    killed = _killed(processes)
    if killed is not None:
        raise killed
    failed = [(rank, p.exitcode) for rank, p in enumerate(processes) if p.exitcode not in (None, 0)]
    if failed:
        # A rank that raised reported why before exiting; the report may still be on its way.
        deadline = time.monotonic() + GRACE_SECONDS
        while time.monotonic() < deadline:
            try:
                kind, payload = messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if kind == "failed":
                raise payload
        rank, code = failed[0]
        raise RankFailed(f"training process {rank} of {len(processes)} exited with code {code} before it "
                         "could report why; see the worker's log")
    if all(p.exitcode == 0 for p in processes):
        raise RankFailed("the training processes ended without a result")


def _stop(processes, wait: float) -> None:
    """Let the ranks leave for ``wait`` seconds, then terminate, then kill whatever is left."""
    started = [p for p in processes if p.pid is not None]
    deadline = time.monotonic() + wait
    for process in started:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in started:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + GRACE_SECONDS
    for process in started:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def _load_parameters(model, path: Path) -> None:
    trained = load_file(str(path))
    params = dict(model.named_parameters())
    if trained.keys() != params.keys():
        raise RankFailed("rank 0 returned parameters that do not match the model's")
    with torch.no_grad():
        for name, value in trained.items():
            params[name].copy_(value)


def _rank_main(rank: int, devices: list[torch.device], job: _Job, messages, stop) -> None:
    _die_with(job.worker)
    # A Ctrl-C in the worker's terminal reaches its whole process group; the worker, not its ranks, decides
    # whether the job stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(job.threads)
    try:
        with joined(rank, len(devices), f"file://{job.folder}/rendezvous", devices[rank], job.config.sharding) as world:
            _train_rank(world, job, messages, stop)
    except Exception as exc:  # noqa: BLE001 - whatever it is, the caller must learn of it to end the job
        if not isinstance(exc, TrainingCancelled):
            log.error("training process %d of %d failed (%s)", rank, len(devices), describe(exc))
        _report(messages, ("failed", _portable(exc, rank, len(devices))))
        sys.exit(1)


def _train_rank(world, job: _Job, messages, stop) -> None:
    transformers_logging.disable_progress_bar()  # one bar per rank would only clutter the worker's log
    model = job.model_class.from_pretrained(
        Path(job.folder) / "base", dtype=job.dtype, device_map={"": str(world.device)}
    )
    lead = world.rank == 0
    result = job.train(
        model,
        job.data,
        job.config,
        world=world,
        tasks_learned=job.tasks_learned,
        on_phase=(lambda phase: _report(messages, ("phase", phase))) if lead else (lambda _phase: None),
        on_progress=(lambda info: _report(messages, ("progress", info))) if lead else None,
        should_cancel=stop.is_set if lead else None,
    )
    parameters = world.gather_parameters(result.model)  # a collective: every rank takes part
    if lead:
        save_file(parameters, str(Path(job.folder) / "trained.safetensors"))
        outcome: RankOutcome = {"retention": result.retention, "steps": result.steps,
                                "trained_tokens": result.trained_tokens, "final_loss": result.final_loss}
        _report(messages, ("done", outcome))


def _portable(exc: Exception, rank: int, size: int) -> Exception:
    """The exception to raise in the caller: itself if the worker maps its type, else a RankFailed."""
    if isinstance(exc, PASSED_THROUGH) and _crosses_processes(exc):
        return exc
    detail = (str(exc).strip().splitlines() or [""])[0][:300]
    return RankFailed(
        f"training process {rank} of {size} failed: {type(exc).__name__}" + (f": {detail}" if detail else "")
    )


def _crosses_processes(exc: Exception) -> bool:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any failure means it cannot; it is described instead
        return False
    return True


def _die_with(worker: int) -> None:
    """Exit the moment the worker dies, even by SIGKILL, so no rank outlives its job. (The ranks' parent is
    the fork server, which itself waits for them, so the kernel's parent-death signal would not do.)"""

    def watch() -> None:
        if hasattr(os, "pidfd_open"):  # Linux: readable once the worker has exited
            with contextlib.suppress(ProcessLookupError):
                select.select([os.pidfd_open(worker)], [], [])
        else:
            while process_alive(worker):
                time.sleep(POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="watch-worker", daemon=True).start()

