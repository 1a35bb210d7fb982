from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from app.core.errors import ApiError
from app.core.schemas import ListObject, error_responses
from app.http.auth import ADMIN
from app.http.deps import SessionDep
from app.lineages.presenters import version_object
from app.lineages.schemas import VersionObject
from app.lineages.suites import GENERAL_ANSWERS
from app.versions import details, service
from app.versions.archive import parse_range
from app.versions.schemas import (
    ModelDeleted,
    RemovedVersion,
    RetentionObject,
    RetentionUpdate,
    SweepObject,
    WebhookObject,
    WebhookUpdate,
)

router = APIRouter(prefix="/models", tags=["models"])
# No upper bound: a number past the database's integers names no version (404, from the service).
VersionPath = Path(ge=1)


class RangeNotSatisfiable(ApiError):
    status_code = 416
    default_code = "range_not_satisfiable"


def _version(session: Session, row) -> VersionObject:
    return version_object(row, service.get_model(session, row.model_id).head_version)


@router.get("/{model_id}/versions/{version}/content", response_class=StreamingResponse,
            responses={200: {"content": {"application/x-tar": {}}}, 206: {"content": {"application/x-tar": {}}},
                       **error_responses(401, 404, 409, 416, 429)})
def version_content(session: SessionDep, model_id: str, version: int = VersionPath,
                    range_: str | None = Header(None, alias="Range"),
                    if_range: str | None = Header(None, alias="If-Range")) -> StreamingResponse:
    """The version's checkpoint as a tar archive: its safetensors, config and tokenizer files, and
    manifest.json with each file's sha256. The archive is the same bytes on every request, so a broken
    download resumes with `Range: bytes=<received>-` (and `If-Range: <ETag>`)."""
    archive, digest = service.content_archive(session, model_id, version)
    etag = f'"{digest}"'
    headers = {"Accept-Ranges": "bytes", "ETag": etag,
               "Content-Disposition": f'attachment; filename="{model_id}-v{version}.tar"'}
    try:
        wanted = parse_range(range_, archive.size) if if_range in (None, etag) else None
    except ValueError as exc:
        raise RangeNotSatisfiable(str(exc), param="Range",
                                  headers={"Content-Range": f"bytes */{archive.size}"}) from exc
    start, stop = wanted or (0, archive.size)
    headers["Content-Length"] = str(stop - start)
    if wanted:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{archive.size}"
    return StreamingResponse(archive.chunks(start, stop), status_code=206 if wanted else 200, headers=headers,
                             media_type="application/x-tar")


def _listing(items: list[dict[str, Any]], has_more: bool, key: str) -> ListObject[dict[str, Any]]:
    return ListObject(data=items, has_more=has_more, first_id=str(items[0][key]) if items else None,
                      last_id=str(items[-1][key]) if items else None)


@router.get("/{model_id}/versions/{version}/examples", response_model=ListObject[dict[str, Any]],
            responses=error_responses(401, 404, 422, 429))
def version_examples(session: SessionDep, model_id: str, version: int = VersionPath,
                     task: str = Query(min_length=1, max_length=128, description="The task (a matrix column)."),
                     changed: bool = Query(False, description="Only the examples whose score changed since the "
                                                              "previous version (lost or gained)."),
                     after: str | None = Query(None, description="The index of the last item of the previous page."),
                     limit: int = Query(20, ge=1, le=200)) -> ListObject[dict[str, Any]]:
    """The held-out examples behind one cell of the accuracy matrix (this version on `task`): each prompt, the
    reference, this version's answer and score, beside the previous version's (its parent's) answer and score,
    and `change` (`lost`, `gained` or null): what this version forgot or learned, exactly."""
    items, has_more = details.task_examples(session, model_id, version, task, changed, after, limit)
    return _listing(items, has_more, "index")


@router.get("/{model_id}/versions/{version}/answers", response_model=ListObject[dict[str, Any]],
            responses=error_responses(401, 404, 422, 429))
def version_answers(session: SessionDep, model_id: str, version: int = VersionPath,
                    suite: str = Query(GENERAL_ANSWERS.name, description="The suite whose answers to list."),
                    after: str | None = Query(None, description="The index of the last item of the previous page."),
                    limit: int = Query(20, ge=1, le=200)) -> ListObject[dict[str, Any]]:
    """Every item a suite asked the version, a page at a time: its answer and whether it was right, beside
    the base's answer to the same item (the version object's summary keeps only a few that went wrong)."""
    items, has_more = details.suite_answers(session, model_id, version, suite, after, limit)
    return _listing(items, has_more, "index")


@router.get("/{model_id}/versions/{version}/retention", response_model=ListObject[dict[str, Any]],
            responses=error_responses(401, 404, 422, 429))
def version_retention(session: SessionDep, model_id: str, version: int = VersionPath,
                      after: str | None = Query(None, description="The last matrix name of the previous page."),
                      limit: int = Query(20, ge=1, le=200)) -> ListObject[dict[str, Any]]:
    """What the version's strategy kept in each matrix it trained, a page at a time (the version object's
    retention has only the summary)."""
    items, has_more = details.retention_matrices(session, model_id, version, after, limit)
    return _listing(items, has_more, "name")


@router.delete("/{model_id}/versions/{version}", dependencies=[ADMIN], response_model=VersionObject,
               responses=error_responses(401, 403, 404, 409, 422, 429))
def delete_version(session: SessionDep, model_id: str, version: int = VersionPath) -> VersionObject:
    """Remove the version's checkpoint. Its row stays, marked deleted, so the lineage, the accuracy matrix
    and the head history stay readable. The head, the base and a version a queued or running job trains
    from cannot be deleted (409 says which)."""
    row, _ = service.delete_version(session, model_id, version)
    return _version(session, row)


@router.post("/{model_id}/versions/{version}/pin", dependencies=[ADMIN], response_model=VersionObject,
             responses=error_responses(401, 403, 404, 422, 429))
def pin_version(session: SessionDep, model_id: str, version: int = VersionPath) -> VersionObject:
    """Keep this version whatever the retention policy says."""
    return _version(session, service.set_pinned(session, model_id, version, True))


@router.post("/{model_id}/versions/{version}/unpin", dependencies=[ADMIN], response_model=VersionObject,
             responses=error_responses(401, 403, 404, 422, 429))
def unpin_version(session: SessionDep, model_id: str, version: int = VersionPath) -> VersionObject:
    return _version(session, service.set_pinned(session, model_id, version, False))


@router.delete("/{model_id}", dependencies=[ADMIN], response_model=ModelDeleted,
               responses=error_responses(401, 403, 404, 409, 429))
def delete_model(session: SessionDep, model_id: str,
                 force: bool = Query(False, description="Cancel the lineage's queued and running jobs first.")
                 ) -> ModelDeleted:
    """Remove a lineage: every version's checkpoint, its record and its jobs. 409 while it has queued or
    running jobs, unless force=true."""
    freed, completed = service.delete_lineage(session, model_id, force)
    return ModelDeleted(id=model_id, bytes_freed=freed, completed=completed)


def _retention(session: Session, model) -> RetentionObject:
    return RetentionObject(model=model.id, keep_last=model.keep_last,
                           pinned=service.pinned_versions(session, model.id))


@router.get("/{model_id}/retention", response_model=RetentionObject, responses=error_responses(401, 404, 429))
def get_retention(session: SessionDep, model_id: str) -> RetentionObject:
    return _retention(session, service.get_model(session, model_id))


@router.put("/{model_id}/retention", dependencies=[ADMIN], response_model=RetentionObject,
            responses=error_responses(401, 403, 404, 422, 429))
def set_retention(session: SessionDep, model_id: str, body: RetentionUpdate) -> RetentionObject:
    """Set the retention policy; the workers' sweep (or POST .../retention/sweep) applies it."""
    return _retention(session, service.set_retention(session, model_id, body.keep_last))


@router.post("/{model_id}/retention/sweep", dependencies=[ADMIN], response_model=SweepObject,
             responses=error_responses(401, 403, 404, 429))
def sweep(session: SessionDep, model_id: str,
          dry_run: bool = Query(False, description="Only report what would be deleted.")) -> SweepObject:
    """Delete the checkpoints the retention policy lets go now, and report the bytes freed."""
    model, removed = service.sweep_retention(session, model_id, dry_run)
    return SweepObject(model=model_id, keep_last=model.keep_last, dry_run=dry_run,
                       deleted=[RemovedVersion(version=r.version, bytes=r.bytes) for r in removed],
                       bytes_freed=sum(r.bytes for r in removed))


@router.get("/{model_id}/webhook", response_model=WebhookObject, responses=error_responses(401, 404, 429))
def get_webhook(session: SessionDep, model_id: str) -> WebhookObject:
    return WebhookObject(model=model_id, webhook_url=service.get_model(session, model_id).webhook_url)


@router.put("/{model_id}/webhook", dependencies=[ADMIN], response_model=WebhookObject,
            responses=error_responses(401, 403, 404, 422, 429))
def set_webhook(session: SessionDep, model_id: str, body: WebhookUpdate) -> WebhookObject:
    """Post each later head change (promotion or rollback) to this URL as a 'model.head_changed' event,
    signed like job webhooks (Sculpt-Signature over the timestamp and body)."""
    model = service.set_webhook(session, model_id, body.webhook_url)
    return WebhookObject(model=model_id, webhook_url=model.webhook_url)
