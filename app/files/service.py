"""Task dataset files: validated upload into the content-addressed store, listing, deletion."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.core.db.tables import File, Job, Model, Task, utcnow
from app.core.enums import TERMINAL_STATUSES
from app.core.errors import Conflict, NotFound, PayloadTooLarge, Unprocessable
from app.core.ids import new_id
from app.core.settings import get_settings
from app.core.storage import FILES, file_key, get_storage
from app.files.datasets import DatasetError, purposes, validate_stream


def _clean_filename(filename: str | None) -> str:
    """The client's name for the file, as a display label only: no folders, no control characters."""
    name = "".join(ch for ch in Path(filename or "").name if ch.isprintable())[:255]
    return name or "upload.jsonl"


def upload_file(session: Session, source: BinaryIO, filename: str, purpose: str) -> File:
    """Validate ``source`` for its purpose while copying it to a temp file; store it only if it is valid."""
    if purpose not in purposes():
        raise Unprocessable(f"purpose must be one of {list(purposes())}", param="purpose")
    store = get_storage()
    tmp = store.scratch_file(FILES)
    try:
        with open(tmp, "wb") as sink:
            try:
                summary = validate_stream(source, sink, get_settings(), purpose)
            except DatasetError as exc:
                error = PayloadTooLarge if exc.too_large else Unprocessable
                raise error(f"invalid {purpose} file: " + "; ".join(exc.problems), param="file",
                            code="invalid_file") from exc
        store.store_file(tmp, file_key(summary.sha256))
    finally:
        tmp.unlink(missing_ok=True)
    row = File(id=new_id("file"), filename=_clean_filename(filename),
               purpose=purpose, bytes=summary.bytes, sha256=summary.sha256, line_count=summary.lines,
               record_count=summary.records,
               record_format=summary.record_format, status="processed")
    session.add(row)
    session.commit()
    return row


def get_file(session: Session, file_id: str, param: str = "file_id") -> File:
    row = session.get(File, file_id)
    if row is None or row.deleted_at is not None:
        raise NotFound(f"No file with id '{file_id}'", param=param)
    return row


def usable_file(session: Session, file_id: str, purpose: str, param: str) -> File:
    """A stored, validated file of the given purpose (404 if absent, 422 if it is another kind)."""
    row = get_file(session, file_id, param=param)
    if row.status != "processed" or row.purpose != purpose:
        raise Unprocessable(f"File '{file_id}' is not a validated '{purpose}' file "
                            f"(purpose {row.purpose}, status {row.status})", param=param, code="invalid_file")
    return row


def list_files(session: Session, after: str | None, limit: int, purpose: str | None) -> tuple[list[File], bool]:
    """Newest first, like OpenAI; ``after`` is the id of the last file of the previous page."""
    query = select(File).where(File.deleted_at.is_(None))
    if purpose:
        query = query.where(File.purpose == purpose)
    if after:
        cursor = get_file(session, after, param="after")
        query = query.where(or_(File.created_at < cursor.created_at,
                                and_(File.created_at == cursor.created_at, File.id < cursor.id)))
    rows = session.scalars(query.order_by(File.created_at.desc(), File.id.desc()).limit(limit + 1)).all()
    return list(rows[:limit]), len(rows) > limit


def content_chunks(session: Session, file_id: str) -> Iterator[bytes]:
    """The stored bytes of a file, streamed from whichever store holds them."""
    row = get_file(session, file_id)
    try:
        handle = get_storage().open(file_key(row.sha256))
    except FileNotFoundError as exc:
        raise NotFound(f"The content of file '{file_id}' is missing from the artifact store",
                       param="file_id") from exc
    return _chunks(handle)


def _chunks(handle: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    with handle:
        while block := handle.read(size):
            yield block


def _in_use_by(session: Session, file_id: str, force: bool) -> str | None:
    active_job = session.scalar(
        select(Job.id).where(or_(Job.training_file == file_id, Job.validation_file == file_id),
                             Job.status.not_in(TERMINAL_STATUSES)).limit(1))
    if active_job:
        return f"job {active_job} (cancel it first)"
    task = session.scalar(select(Task).where(Task.training_file == file_id).limit(1))
    if task and not force:
        return (f"task '{task.name}' of model '{task.model_id}' (its evaluation needs it; force=true deletes it "
                "anyway and the task is no longer evaluated)")
    # A lineage's suite files are a small JSON map per lineage: read them rather than query into JSON.
    model = next((m for m, chosen in session.execute(select(Model.id, Model.suites))
                  if file_id in (chosen or {}).values()), None)
    if model:
        return f"model '{model}' (register another suite first)"
    return None


def _stored_elsewhere(session: Session, sha256: str) -> bool:
    return session.scalar(select(File.id).where(File.sha256 == sha256, File.deleted_at.is_(None)).limit(1)) is not None


def _retire_tasks(session: Session, row: File) -> list[str]:
    """Mark the tasks this file taught unevaluable (their scores stay) and return the keys of their held-out
    splits, copies of the same data, to remove with it."""
    tasks = session.scalars(select(Task).where(Task.training_file == row.id)).all()
    for task in tasks:
        task.unevaluable_reason = f"its training file {row.id} was deleted on {utcnow():%Y-%m-%d %H:%M} UTC"
    session.flush()
    splits = {task.eval_uri for task in tasks} - set(session.scalars(select(Task.eval_uri).where(
        Task.eval_uri.in_({task.eval_uri for task in tasks}), Task.unevaluable_reason.is_(None))))
    keys = [get_storage().key_of(uri) for uri in sorted(splits)]
    return [key for key in keys if key is not None and key.startswith(f"{FILES}/")]


def delete_file(session: Session, file_id: str, force: bool = False) -> None:
    """Hide the file (finished jobs keep naming it); drop its bytes when nothing else shares them. With
    ``force`` a file that taught a lineage's tasks goes too: they are no longer evaluated or replayed."""
    row = get_file(session, file_id)
    user = _in_use_by(session, file_id, force)
    if user:
        raise Conflict(f"File '{file_id}' is in use by {user}", param="file_id", code="file_in_use")
    row.deleted_at = utcnow()
    split_keys = _retire_tasks(session, row)
    session.commit()
    storage = get_storage()
    for key in [file_key(row.sha256), *split_keys]:
        if not _stored_elsewhere(session, key.rpartition("/")[2]):
            storage.delete(key)
