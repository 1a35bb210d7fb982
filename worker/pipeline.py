"""One fine-tuning job, start to end: loading → evaluating_base → calibrating → decomposing → training →
evaluating → saving. Any failure before the version row leaves the head and the artifact
root as they were."""

from __future__ import annotations

import gc
import logging
from typing import Any

from sqlalchemy.orm import Session

from app.core.db.session import session_scope
from app.core.db.tables import File, Job
from app.core.enums import EventType
from app.core.faults import pause_at
from app.core.logsafe import describe
from app.core.settings import get_settings
from app.jobs import attempts
from app.jobs.service import add_event
from app.jobs.strategies import DEFAULT_STRATEGY
from app.lineages import lock
from app.lineages.service import add_scores, find_version, scores_on
from app.versions.service import TrainedVersion, add_metrics, add_trained_version, next_version
from app.webhooks.dispatch import notify_head_changes
from worker import base_scores, judging, measuring
from worker.cache import local_checkpoint
from worker.checkpoints import CorruptCheckpoint, checkpoint_key, discard, save_checkpoint, verify_stored
from worker.errors import JobFailed, LeaseLost, failure_of
from worker.job_config import job_train_config
from worker.job_inputs import JobInputs, resolve
from worker.leases import Heartbeat
from worker.progress import ItemProgress, ProgressReporter

log = logging.getLogger("sculpt.worker")


def _emit(job_id: str) -> measuring.Emit:
    def emit(message: str, **kwargs: Any) -> None:
        attempts.log_event(job_id, message, **kwargs)
    return emit


def _load(model_id: str, version: int, uri: str, sha256: str | None):
    """(model, tokenizer, the dtype its checkpoint stores): the model in float32 (``worker.engine.precision``)."""
    from worker.engine import load_model_and_tokenizer, stored_dtype

    settings = get_settings()
    try:
        folder = local_checkpoint(uri, sha256)
        model, tokenizer, _kind = load_model_and_tokenizer(folder, trust_remote_code=settings.trust_remote_code,
                                                           device=settings.device)
        return model, tokenizer, stored_dtype(folder, trust_remote_code=settings.trust_remote_code)
    except (CorruptCheckpoint, OSError, ValueError) as exc:
        raise JobFailed("model_not_loadable", f"could not load {model_id}:v{version} from {uri}: {exc}",
                        "model") from exc


def _score_on_origin(inputs: JobInputs, emit: measuring.Emit, progress: ItemProgress) -> None:
    """The new task's score on the lineage's original base (version 1), for forward transfer.
    Loaded and freed before the head is loaded, so two models never share memory."""
    model, tokenizer, _dtype = _load(inputs.model_id, 1, inputs.origin_uri, None)
    result = measuring.score(model, tokenizer, inputs.eval_records, inputs.metric, inputs.labels,
                               f"{inputs.task_name} (on the original base v1)", emit, progress)
    _store_cell(inputs, 1, result)
    del model
    gc.collect()


def _baseline(model, tokenizer, inputs: JobInputs, missing: dict[str, list[dict]], emit: measuring.Emit,
              progress: ItemProgress) -> None:
    """Scores of the model before training: the new task (forward transfer) and, once per version, each
    evaluation suite ``missing`` from its metrics, which later versions are compared against. A suite's
    results on the same base weights and records are kept once, for every lineage (``worker.base_scores``)."""
    before = measuring.score(model, tokenizer, inputs.eval_records, inputs.metric, inputs.labels,
                               f"{inputs.task_name} (before training)", emit, progress)
    _store_cell(inputs, inputs.base_version, before)
    if not missing:
        return
    base = base_scores.base_fingerprint(inputs.base_uri, inputs.base_sha256)
    results = {}
    for name, records in missing.items():
        data = base_scores.data_fingerprint(records)
        kept = base_scores.kept_results(base, name, data) if base else None
        if kept is not None:
            progress.skip(name, len(records))
            emit(f"Suite {name} on the base: the results measured before on the same base file and records "
                 "(no need to ask again)", data={"suite": name, "kept_from": "base_scores"})
            results[name] = kept
            continue
        results[name] = measuring.run_suites(model, tokenizer, {name: records}, emit, progress)[name]
        if base:
            base_scores.keep_results(base, name, data, results[name])
    with session_scope() as session:
        add_metrics(session, inputs.model_id, inputs.base_version, results)


def _store_cell(inputs: JobInputs, version: int, result: dict) -> None:
    """The new task's score on a version before training (its matrix cell), with the examples behind it."""
    with session_scope() as session:
        add_scores(session, inputs.model_id, version, {inputs.task_name: result}, inputs.metric)


def _metrics_of(model_id: str, version: int) -> dict:
    with session_scope() as session:
        row = find_version(session, model_id, version)
        if row is None:
            raise LookupError(f"'{model_id}' has no version {version}")
        return dict(row.metrics or {})


def _run(job, owner: str, heartbeat: Heartbeat) -> dict:
    from worker.engine import dtype_name, round_to, train_task

    emit = _emit(job.id)
    config = job_train_config(job)
    inputs = resolve(job)
    attempts.set_base_version(job.id, inputs.base_version)
    emit(f"Training {inputs.model_id}:v{inputs.base_version} on task {inputs.task_name!r}: "
         f"{len(inputs.train_records)} training and {len(inputs.eval_records)} held-out records; "
         f"{len(inputs.learned)} earlier task(s) to re-evaluate")
    reporter = ProgressReporter(job.id, heartbeat)

    def on_phase(phase: str) -> None:
        attempts.set_phase(job.id, phase)
        pause_at(phase)
        reporter.enter(phase)
        # Between phases too, not only at training steps: a cancel during calibrating or decomposing stops
        # the job before the next phase's work.
        if reporter.should_cancel():
            raise _cancelled()

    suites = measuring.suite_data(inputs.model_id)
    measured = _metrics_of(inputs.model_id, inputs.base_version)
    missing = {name: records for name, records in suites.items() if name not in measured}
    # Version 1 scores the task before training below; a later head also scores it on version 1, first, so
    # that model is gone before the head is loaded (the head's loading is then part of this phase).
    on_origin = inputs.base_version != 1
    base_scoring = ItemProgress(job.id, "evaluating_base", len(inputs.eval_records) * (1 + on_origin)
                                + sum(len(records) for records in missing.values()))
    if on_origin:
        on_phase("evaluating_base")
        _score_on_origin(inputs, emit, base_scoring)
    model, tokenizer, dtype = _load(inputs.model_id, inputs.base_version, inputs.base_uri, inputs.base_sha256)
    if not on_origin:
        on_phase("evaluating_base")
    _baseline(model, tokenizer, inputs, missing, emit, base_scoring)

    # The reference set (general text) is old data too, on every job: what general ability the base has.
    reference = measuring.reference_texts(suites)
    if inputs.replay_records:
        emit(f"Replaying {len(inputs.replay_records)} training records of {len(inputs.learned)} earlier task(s) "
             "alongside the new task (continual.replay)", data={"replay_records": len(inputs.replay_records)})
    trained = train_task(model, tokenizer, inputs.train_records + inputs.replay_records, config,
                         tasks_learned=len(inputs.learned),
                         prior_records=inputs.prior_records, reference_texts=reference, on_phase=on_phase,
                         valid_records=inputs.eval_records if job.validation_file else (),
                         on_progress=reporter.on_progress, should_cancel=reporter.should_cancel)
    seconds = reporter.seconds()  # the training phase's own: calibrating and decomposing have theirs
    emit(f"Trained {trained.steps} steps on {trained.trained_tokens} tokens in {seconds:.1f}s; "
         f"final loss {trained.final_loss:.4f}", type=EventType.METRICS,
         data={"steps": trained.steps, "trained_tokens": trained.trained_tokens, "final_loss": trained.final_loss,
               "seconds": round(seconds, 3)})
    # The version keeps its base's dtype; evaluated after rounding, its metrics are those of the weights it stores.
    round_to(trained.model, dtype)

    on_phase("evaluating")
    scoring = ItemProgress(job.id, "evaluating", measuring.task_items(inputs)
                           + sum(len(records) for records in suites.values()))
    scores = measuring.score_tasks(trained.model, tokenizer, inputs, emit, scoring)
    if reporter.should_cancel():
        raise _cancelled()
    base_metrics = _metrics_of(inputs.model_id, inputs.ancestry[0])
    suite_results = measuring.run_suites(trained.model, tokenizer, suites, emit, scoring, base_metrics)
    # The gates were resolved once, when the job was submitted (continual.gates shows them).
    with session_scope() as session:
        cells = scores_on(session, inputs.model_id, inputs.ancestry[1:])
    evaluation = judging.evaluate(inputs, scores, suite_results, cells, base_metrics,
                                  (job.continual or {}).get("gates") or {})
    if reporter.should_cancel():
        raise _cancelled()

    on_phase("saving")
    with session_scope() as session:
        version = next_version(session, inputs.model_id)
    key = checkpoint_key(inputs.model_id, version)
    sha = save_checkpoint(trained.model, tokenizer, key, dtype=dtype,
                          extra={"model": inputs.model_id, "version": version, "parent": inputs.base_version,
                                 "job": job.id, "task": inputs.task_name, "dtype": dtype_name(dtype)})
    try:
        uri = verify_stored(key, sha)
        pause_at("commit")
        return _record(job, inputs, version, uri, sha, trained.retention, evaluation, trained.trained_tokens, owner,
                       losses=reporter.final_losses(), result_file=reporter.stored_results_file())
    except BaseException:
        discard(key)
        raise


def _record(job: Job, inputs: JobInputs, version: int, uri: str, sha256: str, retention: dict,
            evaluation: judging.VersionEvaluation, trained_tokens: int, owner: str, *,
            losses: dict | None = None, result_file: File | None = None) -> dict:
    """Record the version (its task and scores, the head moved when the gates passed) and end the job, in one
    transaction, unless another worker took the lineage over meanwhile (``LeaseLost``: nothing is recorded).

    ``losses``: the final train_loss/valid_loss (the checkpoint's metrics); ``result_file``: the job's
    results file, stored and not yet added."""
    result: dict[str, Any] = {}

    def write(session: Session) -> dict[str, Any]:
        model = lock.held(session, inputs.model_id, owner)
        if model is None:
            raise LeaseLost(f"lineage {inputs.model_id} was taken over during job {job.id}")
        judging.check_head(evaluation, inputs.base_version, model.head_version)
        metrics = {"tasks": {k: v["score"] for k, v in evaluation.scores.items()},
                   **evaluation.suites, **evaluation.summary, **(losses or {})}
        promoted = add_trained_version(session, model, TrainedVersion(
            version=version, parent_version=inputs.base_version, job_id=job.id,
            strategy=(job.continual or {}).get("strategy", DEFAULT_STRATEGY), checkpoint_uri=uri,
            checkpoint_sha256=sha256, retention=retention, metrics=metrics, gate_verdict=evaluation.verdict,
            task_name=inputs.task_name, task_position=len(inputs.learned), training_file=job.training_file,
            eval_uri=inputs.eval_uri, metric=inputs.metric, labels=inputs.labels, scores=evaluation.scores))
        result.update(judging.job_result(evaluation, version, promoted))
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

    attempts.finish(job.id, "succeeded", "The job has successfully completed", record=write,
                    progress={"fraction": 1.0}, trained_tokens=trained_tokens)
    if result["promoted"]:
        notify_head_changes(inputs.model_id)
    return result


def _cancelled():
    from worker.engine import TrainingCancelled

    return TrainingCancelled("cancel requested")


def execute(job_id: str, owner: str, heartbeat: Heartbeat) -> bool:
    """Run one job; False when it could not be started (a live lease still holds it)."""
    job = attempts.start_attempt(job_id, owner)
    if job is None:
        return False
    if job.attempts > attempts.MAX_ATTEMPTS:
        attempts.finish(job_id, "failed", f"the job's worker stopped {job.attempts - 1} times while running it; "
                        "check the worker's logs and memory", error_code="worker_lost", level="error")
        return True
    if job.cancel_requested:
        attempts.finish(job_id, "cancelled", "The job was cancelled before it started")
        return True
    heartbeat.job_id = job_id
    attempts.log_event(job_id, f"Attempt {job.attempts} started on worker {owner}",
                       data={"attempt": job.attempts, "worker": owner})
    from worker.engine import TrainingCancelled

    try:
        _run(job, owner, heartbeat)
    except TrainingCancelled:
        attempts.finish(job_id, "cancelled", "The job was cancelled; the head is unchanged")
    except LeaseLost:
        log.warning("job %s: lineage lease lost; another worker will run it", job_id)
    except Exception as exc:  # noqa: BLE001 - every failure ends the job with a message; details go to the log only
        _finish_failed(job_id, exc)
    finally:
        heartbeat.job_id = None
        gc.collect()
        _free_accelerator()
    return True


def _finish_failed(job_id: str, exc: Exception) -> None:
    if attempts.cancel_requested(job_id):  # the user asked the job to stop, and it has: that is what it shows
        log.info("job %s was cancelled, then failed in its current phase: %s", job_id, describe(exc))
        attempts.finish(job_id, "cancelled", "The job was cancelled; the head is unchanged")
        return
    known = failure_of(exc)
    if known is None:
        log.error("job %s failed unexpectedly: %s", job_id, describe(exc))
        known = ("internal_error", (f"the worker hit an unexpected error ({type(exc).__name__}); "
                                    "the head is unchanged. Operators: see the worker log for this job id"))
    attempts.finish(job_id, "failed", known[1], error_code=known[0], level="error",
                    error_param=getattr(exc, "param", None))


def _free_accelerator() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
