"""Turns the engine's per-step callbacks into job progress, the loss curve and cancel checks; and the
scoring phases' progress (``ItemProgress``).

The loss curve is every step's training loss, or, past MAX_POINTS steps, the mean over windows of
steps small enough for MAX_POINTS points; each epoch's end is a point too, with the validation loss
when there are validation records. Points are metrics events (and the job's results file), written in
batches with the job row at most once a second, so a fast tiny model does not flood the database.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from statistics import fmean

from app.core.db.tables import File
from app.files.results import results_file
from app.jobs import attempts
from worker.errors import LeaseLost
from worker.leases import Heartbeat

ROW_EVERY_S = 1.0
CANCEL_EVERY_S = 0.5
MAX_POINTS = 200


class ProgressReporter:
    def __init__(self, job_id: str, heartbeat: Heartbeat) -> None:
        self.job_id = job_id
        self.heartbeat = heartbeat
        self.phase = "training"
        self.started = time.monotonic()  # of the current phase: its ETA and its time are its own
        self._last_row = self._last_cancel = 0.0
        self._cancelled = False
        self.points: list[dict] = []  # the loss curve: step, train_loss, valid_loss, lr, ...
        self._window: list[float] = []
        self._unwritten: list[dict] = []

    def enter(self, phase: str) -> None:
        self.phase, self.started = phase, time.monotonic()

    def seconds(self) -> float:
        """How long the current phase has run."""
        return time.monotonic() - self.started

    def on_progress(self, info) -> None:
        now = time.monotonic()
        last_step = info.step >= info.total_steps
        elapsed = now - self.started
        fraction = info.step / max(info.total_steps, 1)
        eta = elapsed / fraction * (1 - fraction) if fraction > 0 else None
        eta = None if eta is None else round(eta, 1)
        self._window.append(float(info.loss))
        stride = math.ceil(info.total_steps / MAX_POINTS)
        if last_step or info.step % stride == 0 or info.valid_loss is not None:
            self._add_point(info, eta)
        if not last_step and now - self._last_row < ROW_EVERY_S:
            return
        progress = {"phase": self.phase, "step": info.step, "total_steps": info.total_steps,
                    "fraction": round(fraction, 4), "eta_seconds": eta}
        attempts.write_progress(self.job_id, progress, self._unwritten)
        self._unwritten = []
        self._last_row = now

    def _add_point(self, info, eta: float | None) -> None:
        valid = info.valid_loss if info.valid_loss is not None and math.isfinite(info.valid_loss) else None
        train = fmean(self._window)
        point = {"step": info.step, "total_steps": info.total_steps, "loss": train, "train_loss": train,
                 "valid_loss": valid, "lr": float(info.lr), "tokens_per_second": float(info.tokens_per_second),
                 "epoch": info.epoch, "eta_seconds": eta}
        self._window = []
        self.points.append(point)
        self._unwritten.append(point)

    def final_losses(self) -> dict[str, float]:
        """The training loss at the last step and the last validation loss, as a checkpoint's metrics."""
        valid = [p["valid_loss"] for p in self.points if p["valid_loss"] is not None]
        losses = {"train_loss": self.points[-1]["train_loss"]} if self.points else {}
        return losses | ({"valid_loss": valid[-1]} if valid else {})

    def stored_results_file(self) -> File:
        """The job's results file (the loss curve as CSV), stored, for the transaction that ends the job."""
        return results_file(self.job_id, self.points)

    def should_cancel(self) -> bool:
        if self.heartbeat.lost.is_set():
            raise LeaseLost(f"job {self.job_id}: another worker took over the lineage")
        now = time.monotonic()
        if now - self._last_cancel >= CANCEL_EVERY_S:
            self._last_cancel = now
            self._cancelled = attempts.cancel_requested(self.job_id)
        return self._cancelled


class ItemProgress:
    """Progress of a scoring phase ('evaluating_base', 'evaluating'): items scored of items to score, set by
    set (a task's held-out records, then each suite), with the set being scored and an ETA."""

    def __init__(self, job_id: str, phase: str, total: int) -> None:
        self.job_id, self.phase, self.total = job_id, phase, max(total, 1)
        self.done = 0
        self.started = time.monotonic()

    @contextmanager
    def scoring(self, stage: str, items: int) -> Iterator[None]:
        """Around scoring ``items`` items of ``stage``: written when it starts and when it is done."""
        self._write(stage)
        yield
        self.skip(stage, items)

    def skip(self, stage: str, items: int) -> None:
        """``items`` items that needed no scoring (their results were kept from before)."""
        self.done = min(self.done + items, self.total)
        self._write(stage)

    def _write(self, stage: str) -> None:
        fraction = self.done / self.total
        elapsed = time.monotonic() - self.started
        eta = round(elapsed / fraction * (1 - fraction), 1) if fraction > 0 else None
        attempts.write_progress(self.job_id, {"phase": self.phase, "stage": stage, "unit": "items", "step": self.done,
                                           "total_steps": self.total, "fraction": round(fraction, 4),
                                           "eta_seconds": eta})
