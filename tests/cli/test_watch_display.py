"""How ``jobs watch`` draws a stream: a line per phase, training's with bar, steps, loss and ETA;
redrawn in place on a terminal, printed once per metrics event elsewhere."""

from __future__ import annotations

import io

from app.cli.sse import ServerEvent
from app.cli.watch import PhaseDisplay


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def running(phase: str, **progress) -> ServerEvent:
    return ServerEvent("progress", {"id": "ftjob-1", "status": "running", "progress": {"phase": phase, **progress}})


def phase(name: str) -> ServerEvent:
    return ServerEvent("message", {"message": f"Phase: {name}", "type": "message", "data": {"phase": name}})


STREAM = [
    running("loading"),
    ServerEvent("message", {"message": "Attempt 1 started", "type": "message", "data": {"attempt": 1}}, "ftevent-2"),
    phase("calibrating"), phase("training"),
    running("training", step=3, total_steps=6, fraction=0.5, eta_seconds=4.2),
    ServerEvent("metrics", {"message": "Step 3/6", "type": "metrics", "data": {"step": 3, "loss": 2.5}}),
    phase("evaluating"),
    running("evaluating", step=6, total_steps=6, fraction=1.0, eta_seconds=0),
    ServerEvent("progress", {"id": "ftjob-1", "status": "succeeded", "progress": {"phase": "saving"}}),
]
TRAINING_LINE = "  training      [############............]  50%  step 3/6  loss 2.5000  eta 4s"


def test_a_log_gets_each_phase_and_each_metrics_line_once():
    out = io.StringIO()
    display = PhaseDisplay(out, live=False)
    for event in STREAM:
        display.on_event(event)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[:3] == ["  loading", "  Attempt 1 started", lines[2]] and lines[2].startswith("  loading done in")
    assert lines.count(TRAINING_LINE) == 1
    assert [line.split()[0] for line in lines if " done in " in line] == ["loading", "calibrating", "training",
                                                                           "evaluating"]
    assert not any("step 6/6" in line for line in lines)  # training's figures are not shown as evaluating's


def test_a_terminal_gets_the_line_redrawn_in_place():
    out = Terminal()
    display = PhaseDisplay(out, live=True)
    for event in STREAM:
        display.on_event(event)
    text = out.getvalue()
    assert "\r\x1b[K" + TRAINING_LINE in text
    assert "\r\x1b[K" + TRAINING_LINE + "  done in " in text  # the phase's last line stays, with its time
    assert text.endswith("\n") and "evaluating" in text.splitlines()[-1]


class FlakyStream:
    """A server whose first stream ends with an error event; the second resumes and finishes."""

    def __init__(self) -> None:
        self.resumed_from: list[str | None] = []

    def stream_events(self, job_id: str, last_event_id: str | None = None):
        self.resumed_from.append(last_event_id)
        if len(self.resumed_from) == 1:
            yield ServerEvent("message", {"message": "Created", "type": "message", "data": None}, "ftevent-7")
            yield ServerEvent("error", {"message": "The database is unreachable"})
        else:
            yield ServerEvent("progress", {"id": job_id, "status": "failed", "progress": {},
                                           "error": {"code": "nan_loss", "message": "loss is NaN"}})


def test_watch_resumes_after_an_early_end_and_exits_by_the_outcome(monkeypatch):
    from app.cli import watch as watching

    monkeypatch.setattr(watching.time, "sleep", lambda _s: None)
    server, out = FlakyStream(), io.StringIO()
    assert watching.watch(server, "ftjob-1", out=out) == 3
    assert server.resumed_from == [None, "ftevent-7"]
    assert out.getvalue().endswith("ftjob-1 failed: nan_loss: loss is NaN\n")


def at(seconds: int, event: ServerEvent) -> ServerEvent:
    event.data["created_at"] = seconds
    return event


def test_phase_times_are_the_server_s_and_the_end_comes_after_the_last_phase(monkeypatch):
    from app.cli import watch as watching

    clock = iter(range(0, 10_000, 1000))  # this client's clock runs far from the server's
    monkeypatch.setattr(watching.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    display = PhaseDisplay(out, live=False)
    for event in [at(100, phase("training")), at(107, phase("saving")),
                  at(110, ServerEvent("message", {"message": "job succeeded: completed", "type": "message",
                                                  "data": {"status": "succeeded", "error_code": None}}))]:
        display.on_event(event)
    lines = out.getvalue().splitlines()
    assert "  training done in 7s" in lines and "  saving done in 3s" in lines
    assert lines.index("  saving done in 3s") < lines.index("  job succeeded: completed")


class OneJob:
    def __init__(self, job: dict) -> None:
        self.job = job

    def stream_events(self, job_id: str, last_event_id: str | None = None):  # noqa: ARG002 - the client's signature
        yield ServerEvent("progress", self.job)


def test_watch_exit_code_says_whether_the_version_was_promoted():
    from app.cli.watch import watch

    done = {"id": "ftjob-1", "status": "succeeded", "progress": {}, "fine_tuned_model": "m:v2"}
    out = io.StringIO()
    assert watch(OneJob({**done, "result": {"promoted": True}}), "ftjob-1", out=out) == 0
    assert watch(OneJob({**done, "result": {"promoted": False}}), "ftjob-1", out=out) == 5
    assert "not promoted (failed gates)" in out.getvalue()


def point(step: int, total: int, loss: float) -> ServerEvent:
    return ServerEvent("metrics", {"message": f"Step {step}/{total}", "type": "metrics",
                                   "data": {"step": step, "total_steps": total, "loss": loss, "eta_seconds": 0}})


def test_the_step_shown_is_the_one_the_loss_belongs_to_and_training_ends_at_100_percent():
    # A fast job: the job row (written at most once a second) still says step 1 while every step's loss arrives.
    stream = [phase("training"), running("training", step=1, total_steps=3, fraction=0.33),
              point(1, 3, 3.0), point(2, 3, 2.0), point(3, 3, 1.0), phase("evaluating")]
    out = io.StringIO()
    display = PhaseDisplay(out, live=False)
    for event in stream:
        display.on_event(event)
    lines = [line for line in out.getvalue().splitlines() if "loss" in line]
    assert [line.split("]")[1].split()[:4] for line in lines] == [
        ["33%", "step", "1/3", "loss"], ["67%", "step", "2/3", "loss"], ["100%", "step", "3/3", "loss"]]
    assert [line.split()[-1] for line in lines] == ["3.0000", "2.0000", "1.0000"]


def test_the_final_line_has_general_kept_with_what_it_rests_on():
    from app.cli.watch import watch

    result = {"promoted": True, "acc": 0.9, "general_kept": 0.957, "general_lost": 3, "general_asked": 69}
    out = io.StringIO()
    watch(OneJob({"id": "ftjob-1", "status": "succeeded", "progress": {}, "fine_tuned_model": "m:v2",
                  "result": result}), "ftjob-1", out=out)
    assert out.getvalue().endswith("promoted to head, acc 0.900, general_kept 0.957 (3 lost of 69 asked)\n")


def scoring(phase_name: str, step: int, total: int, stage: str) -> ServerEvent:
    return running(phase_name, unit="items", step=step, total_steps=total, stage=stage,
                   fraction=step / total, eta_seconds=None)


def test_scoring_the_base_is_a_phase_of_its_own_with_items_done_of_items():
    stream = [running("loading"), phase("evaluating_base"), scoring("evaluating_base", 0, 150, "alpha"),
              scoring("evaluating_base", 3, 150, "general_answers"), scoring("evaluating_base", 123, 150, "safety"),
              scoring("evaluating_base", 150, 150, "safety"), phase("calibrating")]
    out = io.StringIO()
    display = PhaseDisplay(out, live=False)
    for event in stream:
        display.on_event(event)
    lines = out.getvalue().splitlines()
    assert "  evaluating base" in lines and any(line.startswith("  evaluating base done in") for line in lines)
    progress = [line.split("]")[1].split() for line in lines if "items" in line]
    assert progress == [["0%", "items", "0/150", "alpha"], ["2%", "items", "3/150", "general_answers"],
                        ["82%", "items", "123/150", "safety"], ["100%", "items", "150/150", "safety"]]
