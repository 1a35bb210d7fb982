"""API key shapes. A scope includes the ones before it: ``admin`` ⊃ ``train`` ⊃ ``read``."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, Field

from app.core.schemas import StrictModel

Scope = Literal["read", "train", "admin"]
SCOPES: tuple[str, ...] = get_args(Scope)
MAX_EXPIRES_IN = 10 * 365 * 24 * 3600


class KeyCreate(StrictModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$",
                      description="Unique among keys not revoked.")
    scopes: list[Scope] = Field(min_length=1, description="read: every GET; train: also upload files and create "
                                                          "or cancel jobs; admin: everything, keys included.")
    expires_in: int | None = Field(None, ge=60, le=MAX_EXPIRES_IN,
                                   description="Seconds until the key stops working; default: never.")


class KeyObject(BaseModel):
    object: Literal["api_key"] = "api_key"
    id: str
    name: str
    prefix: str = Field(description="The secret's first characters, to recognise it; never the secret.")
    scopes: list[Scope]
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None


class KeyCreated(KeyObject):
    secret: str = Field(description="The key itself, shown only in this response.")
