"""SQLAlchemy tables. Schemas for the API live apart, in ``app.schemas``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}  # noqa: RUF012 - SQLAlchemy reads it from the class


class ApiKey(Base):
    __tablename__ = "api_keys"
    # A name belongs to one active key at a time; a revoked key's name may be given to a new one.
    __table_args__ = (Index("uq_api_keys_active_name", "name", unique=True,
                            postgresql_where=text("revoked_at IS NULL"), sqlite_where=text("revoked_at IS NULL")),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(64), server_default="admin")  # comma-separated
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class File(Base):
    __tablename__ = "files"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    line_count: Mapped[int] = mapped_column(Integer)
    record_count: Mapped[int | None] = mapped_column(Integer, default=None)  # NULL: uploaded before 0009
    record_format: Mapped[str] = mapped_column(String(16))  # "messages" | "prompt" | "suite"
    status: Mapped[str] = mapped_column(String(16), default="processed")
    status_details: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # Deleted files stay as rows (finished jobs still name them); their bytes go when unshared.
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class Model(Base):
    """A lineage (see app.lineages): a base model and the chain of versions trained from it."""

    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    base_model: Mapped[str] = mapped_column(String(1024))
    head_version: Mapped[int] = mapped_column(Integer, default=1)
    gates: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The evaluation suites' data chosen for this lineage: file purpose -> file id (others use the defaults).
    suites: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The lineage lock: a lease taken with a compare-and-set UPDATE, so it works alike on
    # PostgreSQL and SQLite and frees itself when a worker dies.
    lock_owner: Mapped[str | None] = mapped_column(String(128), default=None)
    lock_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # Set when the lineage is being removed: hidden from then on; the sweep finishes what a crash cut short.
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    # Retention policy: keep this many newest versions (plus the base, the head and pinned ones); None keeps all.
    keep_last: Mapped[int | None] = mapped_column(Integer, default=None)
    # Where each head change is posted ("model.head_changed"), signed like job webhooks.
    webhook_url: Mapped[str | None] = mapped_column(String(2048), default=None)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    parent_version: Mapped[int | None] = mapped_column(Integer, default=None)
    job_id: Mapped[str | None] = mapped_column(String(40), default=None)
    task_name: Mapped[str | None] = mapped_column(String(128), default=None)
    strategy: Mapped[str | None] = mapped_column(String(32), default=None)
    # "base" (version 1), "promoted" (passed its gates) or "rejected" (kept, not the head).
    status: Mapped[str] = mapped_column(String(16), default="promoted")
    checkpoint_uri: Mapped[str] = mapped_column(String(2048))
    checkpoint_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    retention: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    gate_verdict: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # None: the checkpoint is there. "deleting": marked first, so it is never served while its files go;
    # "deleted" once they are gone. The row stays either way (lineage, matrix and audit stay readable).
    deletion: Mapped[str | None] = mapped_column(String(16), default=None, index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class HeadChange(Base):
    __tablename__ = "head_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    job_id: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Every new head change is due to the lineage's webhook (finished at once when it has none), and stays
    # pending until delivered or out of attempts, so the reconciler resumes one a crash cut short.
    webhook_pending: Mapped[bool] = mapped_column(Boolean, default=True, server_default=false(), index=True)
    webhook_deliveries: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    webhook_claimed_until: Mapped[datetime | None] = mapped_column(default=None)


class Task(Base):
    """A task one version learned, with its held-out split. A lineage is a tree, so the tasks a version
    knows are those of its chain (it, its parent, ...); the same name may be learned again on another
    branch, or after the version that learned it was rejected."""

    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_tasks_model_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    position: Mapped[int] = mapped_column(Integer)  # its index in the chain of the version that learned it
    version: Mapped[int] = mapped_column(Integer)
    training_file: Mapped[str] = mapped_column(String(40))
    eval_uri: Mapped[str] = mapped_column(String(2048))
    metric: Mapped[str] = mapped_column(String(32), default="exact_match")
    labels: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when the task's data was deleted: its recorded scores stay, later jobs no longer evaluate or replay it.
    unevaluable_reason: Mapped[str | None] = mapped_column(Text, default=None)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_model_status_seq", "model_id", "status", "seq"),)

    # seq orders submissions (lineage order, cursor pagination); id is the public handle.
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    requested_version: Mapped[int | None] = mapped_column(Integer, default=None)
    status: Mapped[str] = mapped_column(String(24), default="validating_files", index=True)
    phase: Mapped[str | None] = mapped_column(String(24), default=None)
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    error_param: Mapped[str | None] = mapped_column(String(128), default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    request_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    training_file: Mapped[str] = mapped_column(ForeignKey("files.id"))
    validation_file: Mapped[str | None] = mapped_column(ForeignKey("files.id"), default=None)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    continual: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    suffix: Mapped[str | None] = mapped_column(String(64), default=None)
    user_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, default=None)
    queue: Mapped[str] = mapped_column(String(64), default="default")
    base_version: Mapped[int | None] = mapped_column(Integer, default=None)
    result_version: Mapped[int | None] = mapped_column(Integer, default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # Ids of the job's results files (purpose 'fine-tune-results': its loss curve as CSV).
    result_files: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    trained_tokens: Mapped[int | None] = mapped_column(BigInteger, default=None)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # Where the job's terminal state is POSTed, and each delivery attempt ({attempt, status_code|error, at}).
    webhook_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    webhook_deliveries: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    # Until the delivery is over (delivered, or out of attempts) the job stays pending, so a delivery
    # cut short by a crash is resumed by the reconciler; the claim keeps two processes from sending at once.
    webhook_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), index=True)
    webhook_claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    enqueued_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class JobEvent(Base):
    __tablename__ = "job_events"
    # A job's newest (or oldest) events come straight off this index, however many the job logged.
    __table_args__ = (Index("ix_job_events_job_id_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(8), default="info")
    type: Mapped[str] = mapped_column(String(16), default="message")  # "message" | "metrics"
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Evaluation(Base):
    """One cell of the accuracy matrix: a version's score on one task."""

    __tablename__ = "evaluations"
    __table_args__ = (UniqueConstraint("model_id", "version", "task_name", name="uq_evaluations_cell"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    task_name: Mapped[str] = mapped_column(String(128))
    metric: Mapped[str] = mapped_column(String(32))
    score: Mapped[float] = mapped_column(Float)
    n: Mapped[int] = mapped_column(Integer)
    # Each held-out example behind the score: {"prompt", "reference", "answer", "score"}; None before 0012.
    examples: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BaseScore(Base):
    """A suite's results on a base model, kept once per (base weights, suite records): scoring a base is the
    same work for every lineage that starts from it, and on a real model it takes minutes."""

    __tablename__ = "base_scores"
    __table_args__ = (UniqueConstraint("base_sha256", "suite", "data_sha256", name="uq_base_scores_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    base_sha256: Mapped[str] = mapped_column(String(64))
    suite: Mapped[str] = mapped_column(String(64))
    data_sha256: Mapped[str] = mapped_column(String(64))
    results: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Worker(Base):
    """A live training worker announces itself here, renewing ``seen_at`` while it runs (see worker/presence)."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    queues: Mapped[list[Any]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class InferenceServer(Base):
    """A running inference process: where the API reaches it, and what it holds loaded. A row whose
    heartbeat is older than three beats belongs to a process that is gone."""

    __tablename__ = "inference_servers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    url: Mapped[str] = mapped_column(String(512))
    # What the process requires as its bearer token: made afresh by each process and known only through
    # this row, so only a holder of the database (the API) can have it generate.
    token: Mapped[str] = mapped_column(String(64))
    loaded: Mapped[list[Any]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
