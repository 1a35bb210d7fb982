from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Form, Query, UploadFile
from fastapi.responses import StreamingResponse

from app.core.schemas import ListObject, error_responses
from app.files import service
from app.files.datasets import purposes
from app.files.presenters import file_object
from app.files.schemas import FileDeleted, FileObject
from app.http.auth import ADMIN, TRAIN
from app.http.deps import SessionDep

router = APIRouter(prefix="/files", tags=["files"])
if TYPE_CHECKING:
    Purpose = str  # known only at run time, so a plain string to the checker
else:
    Purpose = Literal[purposes()]  # fine-tune and each evaluation suite's purpose: FastAPI validates and documents it


@router.post("", status_code=201, response_model=FileObject, dependencies=[TRAIN],
             responses=error_responses(401, 403, 413, 422, 429))
def upload_file(session: SessionDep, file: UploadFile,
                purpose: Annotated[Purpose, Form()]) -> FileObject:
    """Upload JSONL: a task dataset (`fine-tune`), general-ability texts (`reference`) or a safety suite
    (`safety`). It is validated as it streams in; a bad file is not stored."""
    return file_object(service.upload_file(session, file.file, file.filename or "upload.jsonl", purpose))


@router.get("", response_model=ListObject[FileObject], responses=error_responses(401, 404, 422, 429))
def list_files(session: SessionDep, after: str | None = Query(None, max_length=64),
               limit: int = Query(20, ge=1, le=100),
               purpose: str | None = Query(None, max_length=32)) -> ListObject[FileObject]:
    rows, has_more = service.list_files(session, after, limit, purpose)
    data = [file_object(r) for r in rows]
    return ListObject(data=data, has_more=has_more, first_id=data[0].id if data else None,
                      last_id=data[-1].id if data else None)


@router.get("/{file_id}", response_model=FileObject, responses=error_responses(401, 404, 429))
def get_file(session: SessionDep, file_id: str) -> FileObject:
    return file_object(service.get_file(session, file_id))


@router.get("/{file_id}/content", response_class=StreamingResponse,
            responses={200: {"content": {"application/jsonl": {}}}, **error_responses(401, 404, 429)})
def file_content(session: SessionDep, file_id: str) -> StreamingResponse:
    return StreamingResponse(service.content_chunks(session, file_id), media_type="application/jsonl")


@router.delete("/{file_id}", response_model=FileDeleted, dependencies=[ADMIN],
               responses=error_responses(401, 403, 404, 409, 429))
def delete_file(session: SessionDep, file_id: str,
                force: bool = Query(False, description="Delete it even though tasks a lineage learned were taught "
                                                       "by it: they keep their scores and are no longer evaluated "
                                                       "or replayed.")) -> FileDeleted:
    service.delete_file(session, file_id, force)
    return FileDeleted(id=file_id)
