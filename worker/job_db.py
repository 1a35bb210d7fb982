"""The worker's reads and writes of jobs, versions and accuracy-matrix cells; events and head moves go
through their features' writers (``app.jobs.service.add_event``, ``app.lineages.service.set_head``).

Every job ends through ``finish_job``, success and failure alike: one place sets the terminal
status, clears the lease, logs the last event and starts the webhook delivery after the commit.
A success records its version in the same transaction (``record_version``), so a version never
exists without its job having ended, nor the other way round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.db.session import rows_matched, session_scope
from app.core.db.tables import BaseScore, Evaluation, File, Job, Model, ModelVersion, Task, utcnow
from app.core.enums import EventType
from app.jobs.service import add_event
from app.jobs.strategies import DEFAULT_STRATEGY
from app.lineages.service import set_head
from app.lineages.suites import GENERAL, GENERAL_ANSWERS, SAFETY
from app.webhooks.dispatch import notify_head_changes, notify_terminal
from worker.errors import LeaseLost
from worker.leases import _expiry

if TYPE_CHECKING:
    from worker.job_inputs import JobInputs
    from worker.judging import VersionEvaluation

log = logging.getLogger("sculpt.worker")

PENDING = ("queued", "running")
MAX_ATTEMPTS = 3

# Jobs


def next_pending(model_id: str) -> str | None:
    """The lineage's earliest job that has not ended: lineages run strictly in submission order."""
    with session_scope() as session:
        return session.scalar(
            select(Job.id).where(Job.model_id == model_id, Job.status.in_(PENDING)).order_by(Job.seq).limit(1)
        )


def job_queue(job_id: str) -> str | None:
    with session_scope() as session:
        return session.scalar(select(Job.queue).where(Job.id == job_id))


def job_lineage(job_id: str) -> str | None:
    with session_scope() as session:
        return session.scalar(select(Job.model_id).where(Job.id == job_id))


def start_attempt(job_id: str, owner: str) -> Job | None:
    """Take the job's lease; None when it ended or a live worker holds it."""
    now = utcnow()
    with session_scope() as session:
        taken = rows_matched(session, (
            update(Job)
            .where(Job.id == job_id, Job.status.in_(PENDING),
                   or_(Job.lease_owner.is_(None), Job.lease_owner == owner, Job.lease_expires_at < now))
            .values(status="running", phase="loading", lease_owner=owner, lease_expires_at=_expiry(),
                    heartbeat_at=now, attempts=Job.attempts + 1, started_at=now, progress={"phase": "loading"})
        )) == 1
        if not taken:
            return None
        job = session.scalars(select(Job).where(Job.id == job_id)).one()
        session.expunge(job)
    return job


def set_base_version(job_id: str, version: int) -> None:
    """The version this attempt trains from (the head when it started)."""
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(base_version=version))


def set_phase(job_id: str, phase: str) -> None:
    with session_scope() as session:
        job = session.scalars(select(Job).where(Job.id == job_id)).one()
        job.phase = phase
        job.progress = {"phase": phase}  # a new phase starts from nothing: no figures of the one before
    log_event(job_id, f"Phase: {phase}", data={"phase": phase})


def write_progress(job_id: str, progress: dict[str, Any], metrics: Sequence[dict[str, Any]] = ()) -> None:
    """The job row's progress and the loss-curve points since the last write, one metrics event each."""
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(progress=progress))
        for point in metrics:
            add_event(session, job_id, _metrics_message(point), type=EventType.METRICS, data=point)


def _metrics_message(metrics: dict[str, Any]) -> str:
    valid = "" if metrics.get("valid_loss") is None else f" valid_loss={metrics['valid_loss']:.4f}"
    return (f"Step {metrics['step']}/{metrics['total_steps']}: loss={metrics['loss']:.4f}{valid}"
            f" lr={metrics['lr']:.2e} tokens/s={metrics['tokens_per_second']:.0f}")


def cancel_requested(job_id: str) -> bool:
    with session_scope() as session:
        return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def log_event(job_id: str, message: str, *, type: EventType = EventType.MESSAGE, data: dict | None = None,
              level: str = "info") -> None:
    """One event of the running job, committed at once (``add_event`` in its own transaction)."""
    with session_scope() as session:
        add_event(session, job_id, message, type=type, data=data, level=level)


def finish_job(job_id: str, status: str, message: str, *, error_code: str | None = None,
               error_param: str | None = None, level: str = "info", progress: dict | None = None,
               record: Callable[[Session], dict[str, Any]] | None = None, **fields: Any) -> None:
    """End the job with ``status``; ``record`` writes what commits with the ending (a new version) in
    the same transaction and returns more job fields to set. The webhook goes out after the commit."""
    with session_scope() as session:
        fields = {**fields, **(record(session) if record else {})}
        job = session.scalars(select(Job).where(Job.id == job_id)).one()
        job.status, job.finished_at = status, utcnow()
        job.lease_owner = job.lease_expires_at = None
        job.error_code, job.error_param = error_code, error_param
        job.error_message = message if error_code else None
        job.phase = None  # a terminal job has no running phase
        job.progress = {**(job.progress or {}), **(progress or {}), "phase": None, "eta_seconds": 0}
        for key, value in fields.items():
            setattr(job, key, value)
        add_event(session, job_id, message, level=level, data={"status": status, "error_code": error_code})
    log.info("job %s %s: %s", job_id, status, message)
    notify_terminal(job_id)


# Versions and the accuracy matrix


def next_version(model_id: str) -> int:
    with session_scope() as session:
        return (session.scalar(select(func.max(ModelVersion.version))
                               .where(ModelVersion.model_id == model_id)) or 0) + 1


def version_metrics(model_id: str, version: int) -> dict:
    with session_scope() as session:
        row = session.scalars(select(ModelVersion).where(ModelVersion.model_id == model_id,
                                                         ModelVersion.version == version)).one()
        return dict(row.metrics or {})


def ancestry_cells(model_id: str, versions: list[int]) -> dict[tuple[str, int], float]:
    """The accuracy-matrix cells (task, version) -> score measured on the given versions."""
    with session_scope() as session:
        rows = session.execute(select(Evaluation.task_name, Evaluation.version, Evaluation.score)
                               .where(Evaluation.model_id == model_id, Evaluation.version.in_(versions))).all()
    return {(name, version): value for name, version, value in rows}


def store_cell(model_id: str, version: int, task: str, metric: str, result: dict) -> None:
    """A single matrix cell outside a version's creation (the base's score before training), with the
    examples behind it."""
    with session_scope() as session:
        existing = session.scalar(select(Evaluation).where(
            Evaluation.model_id == model_id, Evaluation.version == version, Evaluation.task_name == task))
        if existing is None:
            session.add(Evaluation(model_id=model_id, version=version, task_name=task, metric=metric,
                                   score=result["score"], n=result["n"], examples=result.get("examples")))


def store_base_metrics(model_id: str, version: int, results: dict[str, dict]) -> None:
    """Suite results measured on a version before training from it (the baseline later versions meet)."""
    with session_scope() as session:
        row = session.scalars(select(ModelVersion).where(ModelVersion.model_id == model_id,
                                                         ModelVersion.version == version)).one()
        row.metrics = {**(row.metrics or {}), **results}


def kept_base_score(base_sha256: str, suite: str, data_sha256: str) -> dict | None:
    """A suite's results on a base measured before (by any lineage), or None."""
    with session_scope() as session:
        return session.scalar(select(BaseScore.results).where(
            BaseScore.base_sha256 == base_sha256, BaseScore.suite == suite, BaseScore.data_sha256 == data_sha256))


def keep_base_score(base_sha256: str, suite: str, data_sha256: str, results: dict) -> None:
    try:
        with session_scope() as session:
            session.add(BaseScore(base_sha256=base_sha256, suite=suite, data_sha256=data_sha256, results=results))
    except IntegrityError:
        pass  # another worker kept the same results first


def suite_files(model_id: str) -> dict[str, str]:
    """The lineage's own suite files: purpose -> sha256 of the stored bytes."""
    with session_scope() as session:
        chosen = session.get_one(Model, model_id).suites or {}
        return {purpose: session.get_one(File, file_id).sha256 for purpose, file_id in chosen.items()}


def general_kept(answers: dict) -> dict[str, Any]:
    """The default gate's figure for a job's result: the share of the base's right general answers the version
    still gets right, with how many it lost of how many it was asked."""
    return {"general_kept": answers.get("general_kept"), "general_lost": answers.get("lost"),
            "general_asked": answers.get("asked")}


def record_version(job: Job, inputs: JobInputs, version: int, uri: str, sha256: str, retention: dict,
                   evaluation: VersionEvaluation, trained_tokens: int, owner: str, *,
                   losses: dict | None = None, result_file: File | None = None) -> dict:
    """Insert the version, its task and scores, move the head when the gates passed, and end the job.

    ``losses``: the final train_loss/valid_loss (the checkpoint's metrics); ``result_file``: the job's
    results file, stored and not yet added."""
    result: dict[str, Any] = {}

    def write(session: Session) -> dict[str, Any]:
        model = session.get_one(Model, inputs.model_id)
        if model.lock_owner != owner:
            raise LeaseLost(f"lineage {inputs.model_id} was taken over during job {job.id}")
        if model.head_version != inputs.base_version:
            # Someone moved the head by hand meanwhile: promoting now would fork the lineage.
            evaluation.verdict = {**evaluation.verdict, "passed": False, "failed": [
                *evaluation.verdict.get("failed", []),
                {"gate": "head_unchanged", "threshold": inputs.base_version, "value": model.head_version}]}
        promoted = evaluation.verdict["passed"]
        metrics = {"tasks": {k: v["score"] for k, v in evaluation.scores.items()},
                   **evaluation.suites, **evaluation.summary, **(losses or {})}
        session.add(ModelVersion(
            model_id=inputs.model_id, version=version, parent_version=inputs.base_version, job_id=job.id,
            task_name=inputs.task_name, strategy=(job.continual or {}).get("strategy", DEFAULT_STRATEGY),
            status="promoted" if promoted else "rejected", checkpoint_uri=uri, checkpoint_sha256=sha256,
            retention=retention, metrics=metrics, gate_verdict=evaluation.verdict))
        # One task row per version that learned it: what a lineage knows is its head chain's rows.
        session.add(Task(model_id=inputs.model_id, name=inputs.task_name, position=len(inputs.learned),
                         version=version, training_file=job.training_file, eval_uri=inputs.eval_uri,
                         metric=inputs.metric, labels=inputs.labels))
        for name, scored in evaluation.scores.items():
            session.add(Evaluation(model_id=inputs.model_id, version=version, task_name=name,
                                   metric=scored.get("metric", inputs.metric), score=scored["score"],
                                   n=scored["n"], examples=scored.get("examples")))
        if promoted:
            set_head(session, model, version, f"job {job.id} learned {inputs.task_name}; gates passed", "worker",
                     job_id=job.id)
        result.update({"version": version, "promoted": promoted, "acc": evaluation.summary["acc"],
                       "bwt": evaluation.summary["bwt"], "forgetting": evaluation.summary["forgetting"],
                       "max_forgetting": evaluation.summary["max_forgetting"], "scores": metrics["tasks"],
                       "general": evaluation.suites.get(GENERAL.name, {}),
                       **general_kept(evaluation.suites.get(GENERAL_ANSWERS.name) or {}),
                       "safety": evaluation.suites.get(SAFETY.name, {}),
                       "failed_gates": evaluation.verdict.get("failed", []),
                       "unmeasured_gates": evaluation.verdict.get("unmeasured", {})})
        for gate, why in result["unmeasured_gates"].items():
            add_event(session, job.id, f"Gate {gate} could not judge version {version}: {why}",
                      data={"gate": gate, "not_measured": why}, level="warn")
        verdict = "promoted to head" if promoted else (
            "kept but not promoted: failed gates " + ", ".join(
                f"{f['gate']} ({f['value']:.4g} vs {f['threshold']:.4g})" for f in result["failed_gates"]))
        add_event(session, job.id, f"Version {inputs.model_id}:v{version} {verdict}", type=EventType.METRICS,
                  data=result)
        if result_file is not None:
            session.add(result_file)
        return {"result": result, "result_version": version,
                "result_files": [result_file.id] if result_file is not None else []}

    finish_job(job.id, "succeeded", "The job has successfully completed", record=write,
               progress={"fraction": 1.0}, trained_tokens=trained_tokens)
    if result["promoted"]:
        notify_head_changes(inputs.model_id)
    return result

