"""Turns the engine's per-step callbacks into job progress, metrics events and cancel checks.

Writes are throttled: the job row at most once a second, a metrics event every few seconds,
so a fast tiny model does not flood the database and a slow big one still reports often.
"""

from __future__ import annotations

import time

from worker import store
from worker.errors import LeaseLost
from worker.leases import Heartbeat

ROW_EVERY_S = 1.0
EVENT_EVERY_S = 3.0
CANCEL_EVERY_S = 0.5


class ProgressReporter:
    def __init__(self, job_id: str, heartbeat: Heartbeat) -> None:
        self.job_id = job_id
        self.heartbeat = heartbeat
        self.phase = "training"
        self.started = time.monotonic()
        self._last_row = self._last_event = self._last_cancel = 0.0
        self._cancelled = False

    def on_progress(self, info) -> None:
        now = time.monotonic()
        last_step = info.step >= info.total_steps
        if not last_step and now - self._last_row < ROW_EVERY_S:
            return
        elapsed = now - self.started
        fraction = info.step / max(info.total_steps, 1)
        eta = elapsed / fraction * (1 - fraction) if fraction > 0 else None
        progress = {"phase": self.phase, "step": info.step, "total_steps": info.total_steps,
                    "fraction": round(fraction, 4), "eta_seconds": None if eta is None else round(eta, 1)}
        metrics = None
        if last_step or info.step == 1 or now - self._last_event >= EVENT_EVERY_S:
            metrics = {"step": info.step, "total_steps": info.total_steps, "loss": float(info.loss),
                       "lr": float(info.lr), "tokens_per_second": float(info.tokens_per_second),
                       "epoch": info.epoch, "eta_seconds": progress["eta_seconds"]}
            self._last_event = now
        store.write_progress(self.job_id, progress, metrics)
        self._last_row = now

    def should_cancel(self) -> bool:
        if self.heartbeat.lost.is_set():
            raise LeaseLost(f"job {self.job_id}: another worker took over the lineage")
        now = time.monotonic()
        if now - self._last_cancel >= CANCEL_EVERY_S:
            self._last_cancel = now
            self._cancelled = store.cancel_requested(self.job_id)
        return self._cancelled
