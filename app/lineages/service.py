"""Lineages, their versions, the head and its audit trail, and the continual-learning record."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.db.tables import Evaluation, File, HeadChange, Job, Model, ModelVersion, Task
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.ids import DB_INT_MAX
from app.core.settings import get_settings
from app.core.storage import get_storage
from app.files.service import usable_file
from app.keys.service import any_key_created
from app.lineages.base_models import check_base_model
from app.lineages.continual_metrics import summarize
from app.lineages.gates import default_gates
from app.lineages.suites import GENERAL, SAFETY, SUITES, by_purpose


def suite_files(session: Session, chosen: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Check a lineage's suite files, given as purpose -> (file id, the request field that named it);
    returns purpose -> file id. Each purpose must be an evaluation suite's, each file of that purpose."""
    for purpose, (file_id, param) in chosen.items():
        if by_purpose(purpose) is None:
            raise Unprocessable(f"No evaluation suite takes files of purpose '{purpose}'; suites: "
                                f"{', '.join(s.purpose for s in SUITES.values())}", param=param,
                                code="unknown_suite")
        usable_file(session, file_id, purpose, param)
    return {purpose: file_id for purpose, (file_id, _) in chosen.items()}


def suite_file_hashes(session: Session, model_id: str) -> dict[str, str]:
    """The lineage's own suite files: purpose -> sha256 of the stored bytes."""
    chosen = session.get_one(Model, model_id).suites or {}
    return {purpose: session.get_one(File, file_id).sha256 for purpose, file_id in chosen.items()}


def register_model(session: Session, model_id: str, base_model: str, actor: str, *, gates: dict | None = None,
                   suites: dict[str, tuple[str, str]] | None = None) -> Model:
    """A new lineage whose version 1 is the base, unchanged, and is its head. ``gates`` None: the default
    gate set (``{}``: none)."""
    settings = get_settings()
    reference = check_base_model(base_model, settings,
                                 name_roots=not settings.server_mode and not any_key_created(session))
    if session.get(Model, model_id) is not None:
        raise Conflict(f"Model '{model_id}' already exists", param="id", code="model_exists")
    model = Model(id=model_id, base_model=reference, head_version=1,
                  gates=default_gates() if gates is None else gates,
                  suites=suite_files(session, suites or {}))
    session.add(model)
    session.flush()
    session.add(ModelVersion(model_id=model_id, version=1, parent_version=None, status="base",
                             checkpoint_uri=reference))
    session.add(HeadChange(model_id=model_id, from_version=None, to_version=1,
                           reason="registered", actor=actor))
    try:
        session.commit()
    except IntegrityError as exc:  # a concurrent registration of the same id won
        session.rollback()
        raise Conflict(f"Model '{model_id}' already exists", param="id", code="model_exists") from exc
    return model


def get_model(session: Session, model_id: str, param: str = "model_id") -> Model:
    model = session.get(Model, model_id)
    if model is None or model.deleted_at is not None:  # a lineage being deleted is gone already
        lineage, _, version = model_id.partition(":v")
        hint = (f"; '{model_id}' names a version: see /v1/models/{lineage}/versions/{version}"
                if version.isdigit() and param == "model_id" else "")
        raise NotFound(f"No model with id '{model_id}'{hint}", param=param, code="model_not_found")
    return model


def list_models(session: Session) -> list[Model]:
    return list(session.scalars(select(Model).where(Model.deleted_at.is_(None)).order_by(Model.created_at, Model.id)))


def ancestry(session: Session, model_id: str, version: int) -> list[int]:
    """The versions from the base to ``version`` along parent links, oldest first."""
    parents = dict(session.execute(select(ModelVersion.version, ModelVersion.parent_version)
                                   .where(ModelVersion.model_id == model_id)).all())
    chain = [version]
    while (parent := parents.get(chain[-1])) is not None:
        chain.append(parent)
    return chain[::-1]


def learned_tasks(session: Session, model_id: str, version: int | None = None) -> list[Task]:
    """The tasks a version knows (default: the head): those learned along its chain, in the order learned.

    A name learned twice on the chain counts once, where it was learned last."""
    if version is None:
        version = get_model(session, model_id).head_version
    rows = session.scalars(select(Task).where(Task.model_id == model_id,
                                              Task.version.in_(ancestry(session, model_id, version)))
                           .order_by(Task.version))
    latest = {row.name: row for row in rows}
    return sorted(latest.values(), key=lambda row: row.version)


def add_learned_task(session: Session, model_id: str, version: int, *, name: str, position: int,
                     training_file: str, eval_uri: str, metric: str, labels: list[str] | None) -> None:
    """The task ``version`` learned (the caller commits): one row per version that learned a task, so what a
    lineage knows is its head chain's rows."""
    session.add(Task(model_id=model_id, name=name, position=position, version=version,
                     training_file=training_file, eval_uri=eval_uri, metric=metric, labels=labels))


def add_scores(session: Session, model_id: str, version: int, scores: dict[str, dict], metric: str) -> None:
    """Accuracy-matrix cells of one version (the caller commits): task -> its result (``score``, ``n``, the
    ``examples`` behind it, its ``metric`` if not ``metric``). A cell measured before stays as it was."""
    measured = set(session.scalars(select(Evaluation.task_name).where(
        Evaluation.model_id == model_id, Evaluation.version == version, Evaluation.task_name.in_(scores))))
    for name, result in scores.items():
        if name not in measured:
            session.add(Evaluation(model_id=model_id, version=version, task_name=name,
                                   metric=result.get("metric", metric), score=result["score"], n=result["n"],
                                   examples=result.get("examples")))


def scores_on(session: Session, model_id: str, versions: list[int]) -> dict[tuple[str, int], float]:
    """The accuracy-matrix cells (task, version) -> score measured on the given versions."""
    rows = session.execute(select(Evaluation.task_name, Evaluation.version, Evaluation.score)
                           .where(Evaluation.model_id == model_id, Evaluation.version.in_(versions))).all()
    return {(name, version): score for name, version, score in rows}


def task_names(session: Session, model_id: str) -> list[str]:
    return [task.name for task in learned_tasks(session, model_id)]


def version_count(session: Session, model_id: str) -> int:
    return session.scalar(select(func.count()).select_from(ModelVersion)
                          .where(ModelVersion.model_id == model_id)) or 0


def list_versions(session: Session, model_id: str) -> list[ModelVersion]:
    get_model(session, model_id)
    return list(session.scalars(select(ModelVersion).where(ModelVersion.model_id == model_id)
                                .order_by(ModelVersion.version)))


def find_version(session: Session, model_id: str, version: int) -> ModelVersion | None:
    """The version's row, deleted or not, or None; ``get_version`` also checks the lineage is there."""
    return None if version > DB_INT_MAX else session.scalar(
        select(ModelVersion).where(ModelVersion.model_id == model_id, ModelVersion.version == version))


def get_version(session: Session, model_id: str, version: int) -> ModelVersion:
    get_model(session, model_id)
    row = find_version(session, model_id, version)
    if row is None:
        raise NotFound(f"Model '{model_id}' has no version {version}", param="version",
                       code="version_not_found")
    return row


def checkpoint_present(row: ModelVersion) -> bool:
    """Whether a version still has a checkpoint to serve: never one marked for deletion (its files may be
    half gone). A checkpoint in an object store counts as present (the inference process answers 404 if
    it is not); a base model registered by hub id too."""
    if row.deletion is not None:
        return False
    storage = get_storage()
    key = storage.key_of(row.checkpoint_uri)
    if key is None:  # a base model, registered by local path or hub id
        path = Path(row.checkpoint_uri)
        return path.exists() or not path.is_absolute()
    local = storage.local_path(key)
    return local is None or local.exists()


def servable_versions(session: Session, model_id: str) -> list[ModelVersion]:
    return [row for row in list_versions(session, model_id) if checkpoint_present(row)]


def move_head(session: Session, model_id: str, version: int, reason: str, actor: str,
              force: bool = False) -> Model:
    """Promote or roll back: point the head at an existing version and record who, when and why."""
    model = get_model(session, model_id)
    target = get_version(session, model_id, version)
    if target.deletion is not None:
        raise Conflict(f"Version {version} was deleted; its checkpoint is gone", param="version",
                       code="version_deleted")
    if target.status == "rejected" and not force:
        raise Conflict(f"Version {version} was rejected by its gates; pass force=true to promote it anyway",
                       param="force", code="version_rejected")
    running = session.scalar(select(Job.id).where(Job.model_id == model_id, Job.status == "running").limit(1))
    if running and not force:
        raise Conflict(f"Job {running} is training on this lineage; wait for it or pass force=true",
                       param="force", code="lineage_busy")
    if model.head_version == version:
        return model
    set_head(session, model, version, reason, actor)
    session.commit()
    return model


def set_head(session: Session, model: Model, version: int, reason: str, actor: str,
             job_id: str | None = None) -> None:
    """Point the head at ``version`` with its audit-trail entry (the caller checks and commits): the one
    writer of the head, for a person's promotion or rollback and for a job's gates that passed."""
    session.add(HeadChange(model_id=model.id, from_version=model.head_version, to_version=version,
                           reason=reason, actor=actor, job_id=job_id))
    model.head_version = version


def set_gates(session: Session, model_id: str, gates: dict) -> Model:
    """Replace the lineage's default gates (a job's own ``continual.gates`` still win)."""
    model = get_model(session, model_id)
    model.gates = gates
    session.commit()
    return model


def set_suites(session: Session, model_id: str, suites: dict[str, tuple[str, str]]) -> Model:
    """Choose the data (purpose -> (file id, request field)) that later versions are evaluated on;
    suites not named keep theirs."""
    model = get_model(session, model_id)
    if not suites:
        raise Unprocessable("Give reference_file, safety_file or suites", param="safety_file", code="missing_suite")
    model.suites = {**(model.suites or {}), **suite_files(session, suites)}
    session.commit()
    return model


def head_history(session: Session, model_id: str) -> list[HeadChange]:
    get_model(session, model_id)
    return list(session.scalars(select(HeadChange).where(HeadChange.model_id == model_id)
                                .order_by(HeadChange.id)))


def evaluations(session: Session, model_id: str, version: int | None = None) -> dict:
    """The accuracy matrix (rows: evaluated versions; columns: tasks some version learned) and the
    figures of one version (default: the head).

    ACC/BWT/FWT/forgetting are computed on the rows of the versions that learned the tasks of that
    version's chain, in order, which is the matrix the continual-learning literature defines; general
    ability and safety are that version's own. Scores of tasks no version learned (measured before
    training by jobs that then failed or were cancelled) are left out.
    """
    model = get_model(session, model_id)
    shown = get_version(session, model_id, version) if version is not None else session.scalars(
        select(ModelVersion).where(ModelVersion.model_id == model_id, ModelVersion.version == model.head_version)).one()
    tasks = learned_tasks(session, model_id, shown.version)
    every_task = list(session.scalars(select(Task).where(Task.model_id == model_id).order_by(Task.version)))
    names = list(dict.fromkeys([t.name for t in tasks] + [t.name for t in every_task]))
    cells = list(session.scalars(select(Evaluation).where(Evaluation.model_id == model_id,
                                                          Evaluation.task_name.in_(names))))
    versions = sorted({c.version for c in cells})
    score = {(c.version, c.task_name): c.score for c in cells}
    matrix = [[score.get((v, name)) for name in names] for v in versions]
    metric = {c.task_name: c.metric for c in cells} | {t.name: t.metric for t in [*every_task, *tasks]}
    learning_rows = [[score.get((t.version, name)) for name in names] for t in tasks]
    parents = dict(session.execute(select(ModelVersion.version, ModelVersion.parent_version)
                                   .where(ModelVersion.model_id == model_id)).all())
    before = [None if (parent := parents.get(t.version)) is None else score.get((parent, t.name)) for t in tasks]
    base = [score.get((1, t.name)) for t in tasks]
    summary = summarize(learning_rows, before=before, base=base)
    shown_metrics = shown.metrics or {}
    return {
        "model": model_id, "version": shown.version, "tasks": names, "versions": versions, "matrix": matrix,
        "metric": metric, "acc": summary["acc"], "bwt": summary["bwt"], "fwt": summary["fwt"],
        "forgetting": {names[i]: f for i, f in summary["forgetting"].items()},
        "general": shown_metrics.get(GENERAL.name) or {}, "safety": shown_metrics.get(SAFETY.name) or {},
        "suites": {name: suite_figures(shown_metrics[name]) for name in SUITES if shown_metrics.get(name)},
        "unevaluable": {t.name: t.unevaluable_reason for t in tasks if t.unevaluable_reason},
        "not_measured": {measure: why for name in SUITES
                         for measure, why in ((shown_metrics.get(name) or {}).get("not_measured") or {}).items()},
    }


# The per-item list a suite keeps that stays in a summary: a few answers that went wrong, for people to read.
SUMMARY_LISTS = ("changed",)


def suite_figures(result: dict) -> dict:
    """A suite's result without its per-item lists (every prompt, answer and verdict), which ?expand=answers
    and the answers sub-resource give; what changed stays, for people to read."""
    return {key: value for key, value in result.items() if not isinstance(value, list) or key in SUMMARY_LISTS}
