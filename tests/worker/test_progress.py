"""The loss curve the worker records: every step's loss up to 200 points a job, window means past that,
each epoch's end with its validation loss; written in batches, never one write per step."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from worker import progress as progress_module
from worker.engine import ProgressInfo
from worker.progress import MAX_POINTS, ProgressReporter


@pytest.fixture
def written(monkeypatch):
    writes: list[tuple[dict, list[dict]]] = []
    monkeypatch.setattr(progress_module.attempts, "write_progress",
                        lambda _job_id, progress, metrics=(): writes.append((progress, list(metrics))))
    return writes


def run(steps: int, epochs: int = 1, valid: bool = False) -> ProgressReporter:
    reporter = ProgressReporter("ftjob-x", SimpleNamespace(lost=threading.Event()))
    per_epoch = steps // epochs
    for step in range(1, steps + 1):
        end = step % per_epoch == 0
        reporter.on_progress(ProgressInfo(step=step, total_steps=steps, loss=float(step), lr=1e-3,
                                          tokens_per_second=100.0, epoch=step / per_epoch,
                                          valid_loss=0.5 * step if valid and end else None))
    return reporter


def test_a_short_job_records_the_loss_of_every_step(written):
    reporter = run(50)
    assert [p["step"] for p in reporter.points] == list(range(1, 51))
    assert [p["train_loss"] for p in reporter.points] == [float(s) for s in range(1, 51)]
    events = [point for _, points in written for point in points]
    assert events == reporter.points and len(written) < 10  # batched with the job row, about once a second
    assert written[-1][0]["step"] == 50 and reporter.final_losses() == {"train_loss": 50.0}


def test_a_long_job_records_window_means_and_every_epochs_validation_loss(written):
    reporter = run(1000, epochs=3 + 1, valid=True)  # 250 steps an epoch
    steps = [p["step"] for p in reporter.points]
    assert len(steps) <= MAX_POINTS + 4 and len(steps) >= MAX_POINTS and steps[-1] == 1000
    first, second = reporter.points[0], reporter.points[1]
    assert first["step"] == 5 and first["train_loss"] == pytest.approx(3.0)  # mean of steps 1..5
    assert second["train_loss"] == pytest.approx(8.0)
    assert [(p["step"], p["valid_loss"]) for p in reporter.points if p["valid_loss"] is not None] == [
        (250, 125.0), (500, 250.0), (750, 375.0), (1000, 500.0)]
    assert reporter.final_losses() == {"train_loss": pytest.approx(998.0), "valid_loss": 500.0}
