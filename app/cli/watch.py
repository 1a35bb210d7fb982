"""``sculpt jobs watch``: follow a job's event stream with a progress bar per phase, loss and ETA.

On a terminal the current phase is one redrawn line; elsewhere (CI logs) each phase and each
message is printed once. A phase's time is the server's (its events' timestamps), not when this
client happened to see them. Exit codes let pipelines gate on the job and on promotion: see EXIT_HELP.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO

from app.cli.http_client import SculptClient, StreamDropped
from app.cli.sse import ServerEvent

EXIT_CODES = {"succeeded": 0, "failed": 3, "cancelled": 4}
REJECTED = 5  # succeeded, but its gates rejected the new version: the head is unchanged
EXIT_HELP = ("0: succeeded and promoted to head; 5: succeeded but rejected by its gates (head unchanged); "
             "3: failed; 4: cancelled; 1: an error (API, connection or bad input)")
RECONNECTS = 5
BAR_WIDTH = 24


def shown(phase: str) -> str:
    """A phase as people read it: 'evaluating_base' -> 'evaluating base'."""
    return phase.replace("_", " ")


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    filled = int(width * min(max(fraction, 0.0), 1.0))
    return f"[{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%}"


class PhaseDisplay:
    """Renders the stream as one line per phase: training's with a bar, steps, loss and ETA."""

    def __init__(self, out: TextIO, live: bool) -> None:
        self.out = out
        self.live = live  # a terminal: redraw the current line in place
        self.phase: str | None = None
        self.phase_started = time.monotonic()
        # Server time (unix seconds) of the newest event seen, and of the current phase's start.
        self.server_now: float | None = None
        self.phase_started_at: float | None = None
        self.progress: dict = {}
        # The newest loss point (a metrics event: step, total_steps, loss, eta_seconds). The job row's progress
        # is written at most once a second, so on a fast job it lags the points: the line shows the point's
        # step, the one its loss belongs to.
        self.point: dict = {}
        self.line = ""

    def on_event(self, event: ServerEvent) -> None:
        if event.event == "progress":
            self._progress(event.data)
            return
        if isinstance(event.data.get("created_at"), int | float):
            self.server_now = event.data["created_at"]
        data = event.data.get("data") or {}
        if data.get("status") in EXIT_CODES:  # the job's last event: its phase ended before it
            self._enter(None)
        if "phase" in data:  # phase changes come as events, so even a phase shorter than a poll shows
            self._enter(data["phase"])
        elif event.event == "metrics" and data.get("loss") is not None:
            self.point = data
            self._draw(report=True)
        elif event.event == "message":
            self._print(f"  {event.data['message']}")

    def _enter(self, phase: str | None) -> None:
        if phase == self.phase:
            return
        self._finish_phase()
        self.phase, self.phase_started, self.progress, self.point = phase, time.monotonic(), {}, {}
        self.phase_started_at = self.server_now
        if phase is not None and not self.live:
            self.out.write(f"  {shown(phase)}\n")

    def _progress(self, job: dict) -> None:
        progress = job.get("progress") or {}
        if job["status"] != "running":
            self._enter(None)
            return
        if self.phase is None:  # loading starts with the attempt, without a phase event
            self._enter(progress.get("phase"))
        if progress.get("phase") == self.phase:
            # A scoring phase's progress moves set by set: a log gets a line each time it does.
            moved = progress.get("unit") == "items" and progress.get("step") != self.progress.get("step")
            self.progress = progress
            self._draw(report=moved)

    def _line(self) -> str:
        parts = [f"  {shown(self.phase or ''):<12}"]
        progress = {**self.progress, **self.point}
        # Training counts steps; the scoring phases count items (held-out records, suite items), set by set.
        counted = self.phase == "training" or progress.get("unit") == "items"
        if counted and progress.get("total_steps"):
            step = progress.get("step") or 0
            parts.append(progress_bar(step / progress["total_steps"]))
            unit = "items" if progress.get("unit") == "items" else "step"
            parts.append(f"{unit} {step}/{progress['total_steps']}")
            if progress.get("stage"):
                parts.append(progress["stage"])
        if self.point:
            parts.append(f"loss {self.point['loss']:.4f}")
        if counted and progress.get("eta_seconds"):
            parts.append(f"eta {progress['eta_seconds']:.0f}s")
        return "  ".join(parts)

    def _draw(self, report: bool = False) -> None:
        """Redraw the line on a terminal; elsewhere print it only when asked (once per metrics event)."""
        if self.phase is None:
            return
        self.line = self._line()
        if self.live:
            self.out.write("\r\x1b[K" + self.line)
            self.out.flush()
        elif report:
            self.out.write(self.line + "\n")

    def _finish_phase(self) -> None:
        if self.phase is None:
            return
        if self.phase_started_at is not None and self.server_now is not None:
            took = f"done in {self.server_now - self.phase_started_at:.0f}s"  # event times are whole seconds
        else:
            took = f"done in {time.monotonic() - self.phase_started:.1f}s"
        if self.live:
            self.out.write("\r\x1b[K" + (self.line or f"  {shown(self.phase):<12}") + f"  {took}\n")
        else:
            self.out.write(f"  {shown(self.phase)} {took}\n")
        self.line = ""

    def _print(self, text: str) -> None:
        if self.live and self.line:
            self.out.write("\r\x1b[K" + text + "\n" + self.line)
        else:
            self.out.write(text + "\n")
        self.out.flush()


def _rejected(job: dict) -> bool:
    return job["status"] == "succeeded" and (job.get("result") or {}).get("promoted") is False


def exit_code(job: dict) -> int:
    return REJECTED if _rejected(job) else EXIT_CODES[job["status"]]


def kept_words(kept: float | None, lost: int | None, asked: int | None) -> str | None:
    """'0.957 (3 lost of 69 asked)': the default gate's figure, general_kept; None when not measured."""
    return None if kept is None else f"{kept:.3f} ({lost} lost of {asked} asked)"


def summary(job: dict) -> str:
    if job["status"] == "succeeded":
        result = job.get("result") or {}
        verdict = "kept, not promoted (failed gates)" if _rejected(job) else "promoted to head"
        figures = "".join(f", {name} {result[name]:.3f}" for name in ("acc", "bwt") if result.get(name) is not None)
        kept = kept_words(result.get("general_kept"), result.get("general_lost"), result.get("general_asked"))
        figures += f", general_kept {kept}" if kept else ""
        return f"{job['id']} succeeded: {job['fine_tuned_model']} {verdict}{figures}"
    error = job.get("error") or {}
    reason = f": {error.get('code')}: {error.get('message')}" if error else ""
    return f"{job['id']} {job['status']}{reason}"


def watch(client: SculptClient, job_id: str, out: TextIO | None = None, as_json: bool = False) -> int:
    """Follow the job to its end (reconnecting with Last-Event-ID if the stream drops); its exit code."""
    out = out or sys.stdout
    display = PhaseDisplay(out, live=out.isatty() and not as_json)
    last_id, job, drops = None, None, 0
    while True:
        try:
            for event in client.stream_events(job_id, last_id):
                if event.event == "error":  # the server ended the stream early; resume where it stopped
                    raise StreamDropped(event.data.get("message", "the server ended the stream"))
                drops = 0
                last_id = event.id or last_id
                if event.event == "progress":
                    job = event.data
                if as_json:
                    out.write(json.dumps({"event": event.event, "id": event.id, "data": event.data}) + "\n")
                    out.flush()
                else:
                    display.on_event(event)
        except StreamDropped:
            drops += 1
            if drops > RECONNECTS:
                raise
            time.sleep(min(2 ** drops, 10))
            continue
        break
    if job is None or job["status"] not in EXIT_CODES:
        raise StreamDropped(f"the stream of {job_id} ended before the job did")
    if not as_json:
        out.write(summary(job) + "\n")
    return exit_code(job)
