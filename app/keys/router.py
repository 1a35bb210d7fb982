"""Key management for admin keys: create (the secret is in that response only), list, revoke."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from app.core.schemas import ListObject, error_responses
from app.http.auth import ADMIN
from app.http.deps import SessionDep
from app.keys import service
from app.keys.presenters import created_key_object, key_object
from app.keys.schemas import KeyCreate, KeyCreated, KeyObject

router = APIRouter(prefix="/keys", tags=["keys"], dependencies=[ADMIN])


@router.post("", status_code=201, response_model=KeyCreated, responses=error_responses(401, 403, 409, 422, 429))
def create_key(session: SessionDep, body: KeyCreate) -> KeyCreated:
    """Create a key; its `secret` is shown in this response only."""
    expires_in = timedelta(seconds=body.expires_in) if body.expires_in else None
    row, secret = service.issue_key(session, body.name, body.scopes, expires_in)
    return created_key_object(row, secret)


@router.get("", response_model=ListObject[KeyObject], responses=error_responses(401, 403, 429))
def list_keys(session: SessionDep) -> ListObject[KeyObject]:
    """Every key, revoked ones included; never a secret."""
    return ListObject(data=[key_object(k) for k in service.list_keys(session)])


@router.delete("/{key_id}", response_model=KeyObject, responses=error_responses(401, 403, 404, 429))
def revoke_key(session: SessionDep, key_id: str) -> KeyObject:
    """Revoke a key at once (it stays listed, with `revoked_at`); its name may then be given to a new key."""
    return key_object(service.revoke_key_by_id(session, key_id))
