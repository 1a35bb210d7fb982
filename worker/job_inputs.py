"""What a job trains from: its base version, its records and held-out split, and what the
lineage learned before (for evaluation and for the activation retention basis)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.db.session import session_scope
from app.core.db.tables import File, Job, Model, ModelVersion
from app.core.storage import file_key, get_storage
from app.files.datasets import MIN_TRAINING_RECORDS, read_records
from app.files.results import store_content
from app.jobs.service import add_event
from app.jobs.service import task_name as job_task_name
from app.lineages.service import ancestry as lineage_ancestry
from app.lineages.service import learned_tasks
from worker.cache import local_file, local_file_at
from worker.errors import JobFailed

EVAL_FRACTION = 0.1
PRIOR_SAMPLES_PER_TASK = 32


@dataclass
class LearnedTask:
    name: str
    position: int
    version: int
    metric: str
    labels: list[str] | None
    eval_records: list[dict]
    train_file: str


@dataclass
class JobInputs:
    model_id: str
    base_version: int
    base_uri: str
    base_sha256: str | None
    origin_uri: str
    task_name: str
    metric: str
    labels: list[str] | None
    train_records: list[dict]
    eval_records: list[dict]
    eval_uri: str
    learned: list[LearnedTask] = field(default_factory=list)
    ancestry: list[int] = field(default_factory=list)
    prior_records: list[dict] = field(default_factory=list)
    replay_records: list[dict] = field(default_factory=list)  # continual.replay: trained on with the new task


def _file_of(session: Session, file_id: str) -> File:
    row = session.get(File, file_id)
    if row is None:
        raise JobFailed("invalid_data", f"file {file_id} no longer exists", "training_file")
    return row


def _records_of(session: Session, file_id: str) -> list[dict]:
    return read_records(local_file(_file_of(session, file_id).sha256))


def _split(records: list[dict], seed: int) -> tuple[list[dict], list[dict]]:
    if len(records) < MIN_TRAINING_RECORDS:
        raise JobFailed("invalid_data", f"the training file needs at least {MIN_TRAINING_RECORDS} records to hold "
                        "one out for evaluation; add records or pass a validation_file", "training_file")
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(len(records) * EVAL_FRACTION))
    held = set(order[:n_eval])
    return ([r for i, r in enumerate(records) if i not in held], [records[i] for i in sorted(held)])


def replay_sample(records: list[dict], held_out: list[dict], count: int, seed: str) -> list[dict]:
    """``count`` of an earlier task's training records, seeded, none of them one of its held-out records:
    training on those would make the task's later scores look remembered when they were taught again."""
    held = {json.dumps(r, sort_keys=True) for r in held_out}
    pool = [r for r in records if json.dumps(r, sort_keys=True) not in held]
    return random.Random(seed).sample(pool, min(count, len(pool)))


def _store_eval_split(records: list[dict]) -> str:
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    return get_storage().uri(file_key(store_content(payload)))


def resolve(job: Job) -> JobInputs:
    with session_scope() as session:
        # The lineage's row and its versions stay while this worker holds its lock (deletion only marks it).
        head = session.get_one(Model, job.model_id).head_version
        if job.requested_version is not None and job.requested_version != head:
            raise JobFailed("lineage_moved", f"the job asked to train {job.model_id}:v{job.requested_version}, "
                            f"but the head is now v{head}; resubmit against the current head", "model")
        base = session.scalars(select(ModelVersion).where(ModelVersion.model_id == job.model_id,
                                                          ModelVersion.version == head)).one()
        origin = session.scalars(select(ModelVersion.checkpoint_uri).where(ModelVersion.model_id == job.model_id,
                                                                           ModelVersion.version == 1)).one()
        train = _records_of(session, job.training_file)
        if job.validation_file:
            eval_records = _records_of(session, job.validation_file)
            eval_uri = get_storage().uri(file_key(_file_of(session, job.validation_file).sha256))
        else:
            train, eval_records = _split(train, job.seed)
            eval_uri = _store_eval_split(eval_records)
        continual = job.continual or {}
        ancestry = lineage_ancestry(session, job.model_id, head)
        task_name = job_task_name(continual, job.suffix, job.training_file)
        earlier = [t for t in learned_tasks(session, job.model_id, head) if t.name != task_name]
        # A task whose data was deleted keeps its recorded scores but is neither evaluated nor replayed.
        tasks = [t for t in earlier if t.unevaluable_reason is None]
        skipped = [t for t in earlier if t.unevaluable_reason is not None]
        if skipped:
            add_event(session, job.id, "Not evaluated or replayed (their data was deleted): " + "; ".join(
                f"{t.name}: {t.unevaluable_reason}" for t in skipped), level="warn",
                data={"unevaluable": [t.name for t in skipped]})
        learned = [LearnedTask(t.name, t.position, t.version, t.metric, t.labels,
                               read_records(local_file_at(t.eval_uri)), t.training_file) for t in tasks]
        prior: list[dict] = []
        replayed: list[dict] = []
        for task in learned:
            records = _records_of(session, task.train_file)
            prior += random.Random(job.seed).sample(records, min(PRIOR_SAMPLES_PER_TASK, len(records)))
            replayed += replay_sample(records, task.eval_records, continual.get("replay") or 0,
                                      f"{job.seed}:{task.name}")
        return JobInputs(
            model_id=job.model_id, base_version=head, base_uri=base.checkpoint_uri,
            base_sha256=base.checkpoint_sha256, origin_uri=origin, task_name=task_name,
            metric=continual.get("metric") or "exact_match", labels=continual.get("labels"),
            train_records=train, eval_records=eval_records, eval_uri=eval_uri,
            learned=learned, ancestry=ancestry, prior_records=prior, replay_records=replayed,
        )
