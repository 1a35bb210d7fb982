"""Recording a finished job: one transaction inserts the version, its task and scores, moves
the head when the gates passed, and ends the job. Nothing is recorded before the checkpoint
is complete and verified."""

from __future__ import annotations

from sqlalchemy import func, select

from app.core.db.session import session_scope
from app.core.db.tables import Evaluation, HeadChange, Job, JobEvent, Model, ModelVersion, Task, utcnow
from worker.errors import LeaseLost
from worker.job_eval import VersionEvaluation
from worker.job_inputs import JobInputs
from worker.webhook_dispatch import notify_head_changes, notify_terminal


def next_version(model_id: str) -> int:
    with session_scope() as session:
        return (session.scalar(select(func.max(ModelVersion.version))
                               .where(ModelVersion.model_id == model_id)) or 0) + 1


def store_cell(model_id: str, version: int, task: str, metric: str, score: float, n: int) -> None:
    """A single matrix cell outside a version's creation (the base's score before training)."""
    with session_scope() as session:
        existing = session.scalar(select(Evaluation).where(
            Evaluation.model_id == model_id, Evaluation.version == version, Evaluation.task_name == task))
        if existing is None:
            session.add(Evaluation(model_id=model_id, version=version, task_name=task, metric=metric,
                                   score=score, n=n))


def store_base_metrics(model_id: str, version: int, general: dict, safety: dict) -> None:
    with session_scope() as session:
        row = session.scalar(select(ModelVersion).where(ModelVersion.model_id == model_id,
                                                        ModelVersion.version == version))
        row.metrics = {**(row.metrics or {}), "general": general, "safety": safety}


def record_version(job: Job, inputs: JobInputs, version: int, uri: str, sha256: str, retention: dict,
                   evaluation: VersionEvaluation, trained_tokens: int, owner: str) -> dict:
    with session_scope() as session:
        model = session.get(Model, inputs.model_id)
        if model.lock_owner != owner:
            raise LeaseLost(f"lineage {inputs.model_id} was taken over during job {job.id}")
        if model.head_version != inputs.base_version:
            # Someone moved the head by hand meanwhile: promoting now would fork the lineage.
            evaluation.verdict = {**evaluation.verdict, "passed": False, "failed": [
                *evaluation.verdict.get("failed", []),
                {"gate": "head_unchanged", "threshold": inputs.base_version, "value": model.head_version}]}
        promoted = evaluation.verdict["passed"]
        metrics = {"tasks": {k: v["score"] for k, v in evaluation.scores.items()},
                   "general": evaluation.general, "safety": evaluation.safety, **evaluation.summary}
        session.add(ModelVersion(
            model_id=inputs.model_id, version=version, parent_version=inputs.base_version, job_id=job.id,
            task_name=inputs.task_name, strategy=(job.continual or {}).get("strategy", "adaptive_svd"),
            status="promoted" if promoted else "rejected", checkpoint_uri=uri, checkpoint_sha256=sha256,
            retention=retention, metrics=metrics, gate_verdict=evaluation.verdict))
        task = session.scalar(select(Task).where(Task.model_id == inputs.model_id, Task.name == inputs.task_name))
        if task is None:
            position = session.scalar(select(func.count()).select_from(Task)
                                      .where(Task.model_id == inputs.model_id))
            task = Task(model_id=inputs.model_id, name=inputs.task_name, position=position)
            session.add(task)
        task.version, task.training_file, task.eval_uri = version, job.training_file, inputs.eval_uri
        task.metric, task.labels = inputs.metric, inputs.labels
        for name, result in evaluation.scores.items():
            session.add(Evaluation(model_id=inputs.model_id, version=version, task_name=name,
                                   metric=result.get("metric", inputs.metric), score=result["score"],
                                   n=result["n"]))
        if promoted:
            session.add(HeadChange(model_id=inputs.model_id, from_version=model.head_version, to_version=version,
                                   reason=f"job {job.id} learned {inputs.task_name}; gates passed",
                                   actor="worker", job_id=job.id))
            model.head_version = version
        result = {"version": version, "promoted": promoted, "acc": evaluation.summary["acc"],
                  "bwt": evaluation.summary["bwt"], "forgetting": evaluation.summary["forgetting"],
                  "max_forgetting": evaluation.summary["max_forgetting"], "scores": metrics["tasks"],
                  "general": evaluation.general, "safety": evaluation.safety,
                  "failed_gates": evaluation.verdict.get("failed", [])}
        row = session.scalar(select(Job).where(Job.id == job.id))
        row.status, row.finished_at, row.result, row.result_version = "succeeded", utcnow(), result, version
        row.trained_tokens, row.lease_owner, row.lease_expires_at = trained_tokens, None, None
        row.progress = {**(row.progress or {}), "phase": "saving", "fraction": 1.0, "eta_seconds": 0}
        verdict = "promoted to head" if promoted else (
            "kept but not promoted: failed gates " + ", ".join(
                f"{f['gate']} ({f['value']:.4g} vs {f['threshold']:.4g})" for f in result["failed_gates"]))
        session.add(JobEvent(job_id=job.id, type="metrics", data=result,
                             message=f"Version {inputs.model_id}:v{version} {verdict}"))
        session.add(JobEvent(job_id=job.id, message="The job has successfully completed",
                             data={"status": "succeeded"}))
    notify_terminal(job.id)
    if promoted:
        notify_head_changes(inputs.model_id)
    return result
