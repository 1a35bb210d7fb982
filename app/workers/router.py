from __future__ import annotations

from fastapi import APIRouter

from app.core.schemas import ListObject, error_responses
from app.http.auth import ADMIN
from app.http.deps import SessionDep
from app.workers import service
from app.workers.presenters import worker_object
from app.workers.schemas import WorkerObject

router = APIRouter(prefix="/workers", tags=["workers"], dependencies=[ADMIN])


@router.get("", response_model=ListObject[WorkerObject], responses=error_responses(401, 403, 429))
def list_workers(session: SessionDep) -> ListObject[WorkerObject]:
    """The live training workers and the queues each serves: a job on a queue none serves waits."""
    return ListObject(data=[worker_object(w) for w in service.live_workers(session)])
