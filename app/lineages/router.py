from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy.orm import Session

from app.core.ids import ascii_number
from app.core.schemas import ListObject, error_responses
from app.http.auth import ADMIN, PrincipalDep
from app.http.deps import SessionDep
from app.jobs.schemas import Gates
from app.lineages import service
from app.lineages.presenters import head_change_object, model_object, version_object
from app.lineages.schemas import (
    EvaluationsObject,
    HeadChangeObject,
    HeadChangeRequest,
    ModelCreate,
    ModelObject,
    SuitesUpdate,
    VersionObject,
    chosen_suites,
)
from app.webhooks.dispatch import notify_head_changes

router = APIRouter(prefix="/models", tags=["models"])
ExpandQuery = Query([], description="Add to each version what its summary leaves out: 'retention' (every matrix's "
                    "kept ranks) and/or 'answers' (every suite item's answer). Repeat for both; the sub-resources "
                    "/versions/{n}/retention and /versions/{n}/answers page them.")
Expand = list[Literal["retention", "answers"]]


def _present(session: Session, model) -> ModelObject:
    return model_object(model, service.version_count(session, model.id), service.task_names(session, model.id))


@router.post("", status_code=201, response_model=ModelObject, dependencies=[ADMIN],
             responses=error_responses(401, 403, 404, 409, 422, 429))
def register_model(session: SessionDep, body: ModelCreate, principal: PrincipalDep) -> ModelObject:
    """Register a lineage: version 1 is the base model, unchanged, and is its head."""
    model = service.register_model(session, body.id, body.base_model, principal.name,
                                   gates=body.gates.model_dump(exclude_none=True) if body.gates else None,
                                   suites=chosen_suites(body))
    return _present(session, model)


@router.get("", response_model=ListObject[ModelObject | VersionObject], responses=error_responses(401, 429))
def list_models(session: SessionDep, expand: Expand = ExpandQuery) -> ListObject[ModelObject | VersionObject]:
    """Each lineage, followed by its versions that can serve ('<id>:v<n>'), as OpenAI lists fine-tuned models.
    Versions are summaries unless ?expand= asks for more."""
    data: list[ModelObject | VersionObject] = []
    for model in service.list_models(session):
        data.append(_present(session, model))
        data += [version_object(v, model.head_version, expand) for v in service.servable_versions(session, model.id)]
    return ListObject(data=data)


@router.get("/{model_id}", response_model=ModelObject | VersionObject, responses=error_responses(401, 404, 429))
def get_model(session: SessionDep, model_id: str, expand: Expand = ExpandQuery) -> ModelObject | VersionObject:
    """A lineage, or one version by its fine-tuned model name ('support-bot:v2', as jobs report it)."""
    lineage, _, version = model_id.rpartition(":v")
    number = ascii_number(version)
    if lineage and number is not None:
        row = service.get_version(session, lineage, number)
        return version_object(row, service.get_model(session, lineage).head_version, expand)
    return _present(session, service.get_model(session, model_id))


@router.get("/{model_id}/versions", response_model=ListObject[VersionObject],
            responses=error_responses(401, 404, 429))
def list_versions(session: SessionDep, model_id: str, expand: Expand = ExpandQuery) -> ListObject[VersionObject]:
    """Every version, summaries unless ?expand= asks for more."""
    rows = service.list_versions(session, model_id)
    head = service.get_model(session, model_id).head_version
    return ListObject(data=[version_object(r, head, expand) for r in rows])


@router.get("/{model_id}/versions/{version}", response_model=VersionObject,
            responses=error_responses(401, 404, 422, 429))
def get_version(session: SessionDep, model_id: str, version: int = Path(ge=1),  # past the database's integers: 404
                expand: Expand = ExpandQuery) -> VersionObject:
    row = service.get_version(session, model_id, version)
    return version_object(row, service.get_model(session, model_id).head_version, expand)


@router.post("/{model_id}/head", response_model=ModelObject, dependencies=[ADMIN],
             responses=error_responses(401, 403, 404, 409, 422, 429))
def move_head(session: SessionDep, model_id: str, body: HeadChangeRequest,
              principal: PrincipalDep) -> ModelObject:
    """Promote or roll back the head; recorded in the head history with who and why, and posted to the
    lineage's webhook_url (if it has one) as a 'model.head_changed' event."""
    model = service.move_head(session, model_id, body.version, body.reason, principal.name,
                              force=body.force)
    notify_head_changes(model_id)
    return _present(session, model)


@router.put("/{model_id}/gates", response_model=ModelObject, dependencies=[ADMIN],
            responses=error_responses(401, 403, 404, 422, 429))
def set_gates(session: SessionDep, model_id: str, body: Gates) -> ModelObject:
    """Set the lineage's default promotion gates (an empty object removes them all)."""
    return _present(session, service.set_gates(session, model_id, body.model_dump(exclude_none=True)))


@router.post("/{model_id}/suites", response_model=ModelObject, dependencies=[ADMIN],
             responses=error_responses(401, 403, 404, 409, 422, 429))
def set_suites(session: SessionDep, model_id: str, body: SuitesUpdate) -> ModelObject:
    """Choose the data of evaluation suites: uploaded files with the suite's purpose ('reference', 'general',
    'safety', …)."""
    return _present(session, service.set_suites(session, model_id, chosen_suites(body)))


@router.get("/{model_id}/head/history", response_model=ListObject[HeadChangeObject],
            responses=error_responses(401, 404, 429))
def head_history(session: SessionDep, model_id: str) -> ListObject[HeadChangeObject]:
    return ListObject(data=[head_change_object(r) for r in service.head_history(session, model_id)])


@router.get("/{model_id}/evaluations", response_model=EvaluationsObject,
            responses=error_responses(401, 404, 422, 429))
def evaluations(session: SessionDep, model_id: str,
                version: int | None = Query(None, ge=1,
                                            description="Whose figures to report (default: the head).")
                ) -> EvaluationsObject:
    """The continual-learning record: the accuracy matrix with one version's ACC, BWT and forgetting."""
    return EvaluationsObject(**service.evaluations(session, model_id, version))
