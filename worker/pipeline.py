"""One fine-tuning job, start to end: loading → evaluating_base → calibrating → decomposing → training →
evaluating → saving. Any failure before the version row leaves the head and the artifact
root as they were."""

from __future__ import annotations

import errno
import gc
import logging
from typing import Any

from app.core.faults import pause_at
from app.core.logsafe import describe
from app.core.settings import get_settings
from app.core.storage import StorageError, get_storage
from app.lineages.suites import GENERAL
from worker import job_eval, job_scoring, store
from worker.base_scores import base_fingerprint, data_fingerprint
from worker.cache import local_checkpoint
from worker.checkpoints import CorruptCheckpoint, checkpoint_key, discard, save_checkpoint, verify_stored
from worker.errors import JobFailed, LeaseLost
from worker.job_inputs import JobInputs, resolve
from worker.leases import Heartbeat
from worker.progress import ItemProgress, ProgressReporter
from worker.results import results_file

log = logging.getLogger("sculpt.worker")


def _emit(job_id: str) -> job_scoring.Emit:
    def emit(message: str, **kwargs: Any) -> None:
        store.add_event(job_id, message, **kwargs)
    return emit


def _train_config(job):
    from worker.job_config import train_config

    try:
        config = train_config(job.hyperparameters, job.continual, seed=job.seed, device=get_settings().device)
    except ValueError as exc:
        raise JobFailed("invalid_training_config", f"the job's training settings are not valid: {exc}") from exc
    allowed = _allowed_devices()
    if config.devices > allowed:
        raise JobFailed("too_many_devices", f"the job asks for {config.devices} devices (continual.devices) but this "
                        f"worker allows at most {allowed} (SCULPT_MAX_DEVICES, default: the GPUs it sees); "
                        "ask for fewer or send the job to a queue of bigger workers", "continual.devices")
    try:
        config.validate()
    except ValueError as exc:
        raise JobFailed("invalid_training_config", f"the job's training settings do not work together: {exc}") from exc
    return config


def _allowed_devices() -> int:
    """SCULPT_MAX_DEVICES, else the GPUs from the worker's device on; never more GPUs than it sees."""
    import torch

    from worker.engine.trainer import resolve_device

    device = resolve_device(get_settings().device)
    visible = torch.cuda.device_count() - (device.index or 0) if device.type == "cuda" else None
    limit = get_settings().max_devices or visible or 1
    return min(limit, visible) if visible is not None else limit


def _load(model_id: str, version: int, uri: str, sha256: str | None):
    from worker.engine import load_model_and_tokenizer

    settings = get_settings()
    try:
        folder = local_checkpoint(uri, sha256)
        return load_model_and_tokenizer(folder, trust_remote_code=settings.trust_remote_code,
                                        device=settings.device)[:2]
    except (CorruptCheckpoint, OSError, ValueError) as exc:
        raise JobFailed("model_not_loadable", f"could not load {model_id}:v{version} from {uri}: {exc}",
                        "model") from exc


def _score_on_origin(inputs: JobInputs, emit: job_scoring.Emit, progress: ItemProgress) -> None:
    """The new task's score on the lineage's original base (version 1), for forward transfer.
    Loaded and freed before the head is loaded, so two models never share memory."""
    model, tokenizer = _load(inputs.model_id, 1, inputs.origin_uri, None)
    result = job_scoring.score(model, tokenizer, inputs.eval_records, inputs.metric, inputs.labels,
                               f"{inputs.task_name} (on the original base v1)", emit, progress)
    store.store_cell(inputs.model_id, 1, inputs.task_name, inputs.metric, result)
    del model
    gc.collect()


def _baseline(model, tokenizer, inputs: JobInputs, missing: dict[str, list[dict]], emit: job_scoring.Emit,
              progress: ItemProgress) -> None:
    """Scores of the model before training: the new task (forward transfer) and, once per version, each
    evaluation suite ``missing`` from its metrics, which later versions are compared against. A suite's
    results on the same base weights and records are kept once, for every lineage (``worker.base_scores``)."""
    before = job_scoring.score(model, tokenizer, inputs.eval_records, inputs.metric, inputs.labels,
                               f"{inputs.task_name} (before training)", emit, progress)
    store.store_cell(inputs.model_id, inputs.base_version, inputs.task_name, inputs.metric, before)
    if not missing:
        return
    base = base_fingerprint(inputs.base_uri, inputs.base_sha256)
    results = {}
    for name, records in missing.items():
        data = data_fingerprint(records)
        kept = store.kept_base_score(base, name, data) if base else None
        if kept is not None:
            progress.skip(name, len(records))
            emit(f"Suite {name} on the base: the results measured before on the same base file and records "
                 "(no need to ask again)", data={"suite": name, "kept_from": "base_scores"})
            results[name] = kept
            continue
        results[name] = job_scoring.run_suites(model, tokenizer, {name: records}, emit, progress)[name]
        if base:
            store.keep_base_score(base, name, data, results[name])
    store.store_base_metrics(inputs.model_id, inputs.base_version, results)


def _run(job, owner: str, heartbeat: Heartbeat) -> dict:
    from worker.engine import train_task

    emit = _emit(job.id)
    config = _train_config(job)  # before any loading, so settings that cannot work fail the job at once
    inputs = resolve(job)
    store.set_base_version(job.id, inputs.base_version)
    emit(f"Training {inputs.model_id}:v{inputs.base_version} on task {inputs.task_name!r}: "
         f"{len(inputs.train_records)} training and {len(inputs.eval_records)} held-out records; "
         f"{len(inputs.learned)} earlier task(s) to re-evaluate")
    reporter = ProgressReporter(job.id, heartbeat)

    def on_phase(phase: str) -> None:
        store.set_phase(job.id, phase)
        pause_at(phase)
        reporter.enter(phase)

    suites = job_scoring.suite_data(inputs.model_id)
    measured = store.version_metrics(inputs.model_id, inputs.base_version)
    missing = {name: records for name, records in suites.items() if name not in measured}
    # Version 1 scores the task before training below; a later head also scores it on version 1, first, so
    # that model is gone before the head is loaded (the head's loading is then part of this phase).
    on_origin = inputs.base_version != 1
    base_scoring = ItemProgress(job.id, "evaluating_base", len(inputs.eval_records) * (1 + on_origin)
                                + sum(len(records) for records in missing.values()))
    if on_origin:
        on_phase("evaluating_base")
        _score_on_origin(inputs, emit, base_scoring)
    model, tokenizer = _load(inputs.model_id, inputs.base_version, inputs.base_uri, inputs.base_sha256)
    if not on_origin:
        on_phase("evaluating_base")
    _baseline(model, tokenizer, inputs, missing, emit, base_scoring)

    # The reference set (general text) is old data too, on every job: what general ability the base has.
    reference = [record["text"] for record in suites.get(GENERAL.name, [])]
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
         f"final loss {trained.final_loss:.4f}", type="metrics",
         data={"steps": trained.steps, "trained_tokens": trained.trained_tokens, "final_loss": trained.final_loss,
               "seconds": round(seconds, 3)})

    on_phase("evaluating")
    scoring = ItemProgress(job.id, "evaluating", job_scoring.task_items(inputs)
                           + sum(len(records) for records in suites.values()))
    scores = job_scoring.score_tasks(trained.model, tokenizer, inputs, emit, scoring)
    base_metrics = store.version_metrics(inputs.model_id, inputs.ancestry[0])
    suite_results = job_scoring.run_suites(trained.model, tokenizer, suites, emit, scoring, base_metrics)
    # The gates were resolved once, when the job was submitted (continual.gates shows them).
    evaluation = job_eval.evaluate(inputs, scores, suite_results,
                                   store.ancestry_cells(inputs.model_id, inputs.ancestry[1:]), base_metrics,
                                   (job.continual or {}).get("gates") or {})
    if reporter.should_cancel():
        raise _cancelled()

    on_phase("saving")
    version = store.next_version(inputs.model_id)
    key = checkpoint_key(inputs.model_id, version)
    sha = save_checkpoint(trained.model, tokenizer, key,
                          extra={"model": inputs.model_id, "version": version, "parent": inputs.base_version,
                                 "job": job.id, "task": inputs.task_name})
    try:
        verify_stored(key, sha)
        pause_at("commit")
        return store.record_version(job, inputs, version, get_storage().uri(key), sha, trained.retention,
                                    evaluation, trained.trained_tokens, owner, losses=reporter.final_losses(),
                                    result_file=results_file(job.id, reporter.points))
    except BaseException:
        discard(key)
        raise


def _cancelled():
    from worker.engine import TrainingCancelled

    return TrainingCancelled("cancel requested")


def _failure(exc: BaseException) -> tuple[str, str] | None:
    """Map an exception to (error code, message a user can act on); None for unexpected ones."""
    from worker.engine import NonFiniteLoss, RankFailed, SettingsError

    if isinstance(exc, JobFailed):
        return exc.code, exc.message
    if isinstance(exc, SettingsError):
        return exc.code, f"{exc}. The head is unchanged"
    if isinstance(exc, RankFailed):
        return "training_process_failed", f"{exc}. The head is unchanged"
    if isinstance(exc, NonFiniteLoss):
        return "nan_loss", f"training stopped: {exc}. Try a lower learning rate or check the data for outliers."
    if type(exc).__name__ == "OutOfMemoryError" or isinstance(exc, MemoryError):
        return "out_of_memory", ("the model did not fit in memory while training; lower batch_size "
                                 "(gradient accumulation keeps the effective batch) or use a smaller model")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk_full", "the artifact store ran out of space while saving the checkpoint; free space and retry"
    if isinstance(exc, StorageError):
        return "artifact_store_error", f"{exc}. The head is unchanged; retry the job once the store is back"
    return None


def execute(job_id: str, owner: str, heartbeat: Heartbeat) -> bool:
    """Run one job; False when it could not be started (a live lease still holds it)."""
    job = store.start_attempt(job_id, owner)
    if job is None:
        return False
    if job.attempts > store.MAX_ATTEMPTS:
        store.finish_job(job_id, "failed", f"the job's worker stopped {job.attempts - 1} times while running it; "
                         "check the worker's logs and memory", error_code="worker_lost", level="error")
        return True
    if job.cancel_requested:
        store.finish_job(job_id, "cancelled", "The job was cancelled before it started")
        return True
    heartbeat.job_id = job_id
    store.add_event(job_id, f"Attempt {job.attempts} started on worker {owner}",
                       data={"attempt": job.attempts, "worker": owner})
    from worker.engine import TrainingCancelled

    try:
        _run(job, owner, heartbeat)
    except TrainingCancelled:
        store.finish_job(job_id, "cancelled", "The job was cancelled; the head is unchanged")
    except LeaseLost:
        log.warning("job %s: lineage lease lost; another worker will run it", job_id)
    except Exception as exc:  # noqa: BLE001 - every failure ends the job with a message; details go to the log only
        known = _failure(exc)
        if known is None:
            log.error("job %s failed unexpectedly: %s", job_id, describe(exc))
            known = ("internal_error", (f"the worker hit an unexpected error ({type(exc).__name__}); "
                                        "the head is unchanged. Operators: see the worker log for this job id"))
        store.finish_job(job_id, "failed", known[1], error_code=known[0], level="error",
                         error_param=getattr(exc, "param", None))
    finally:
        heartbeat.job_id = None
        gc.collect()
        _free_accelerator()
    return True


def _free_accelerator() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
