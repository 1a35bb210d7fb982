from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.schemas import StrictModel


class RetentionUpdate(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"keep_last": 3}]})

    keep_last: int | None = Field(description="Keep this many newest versions (the base, the head and pinned "
                                              "versions are always kept besides); null keeps every version.",
                                  ge=0, le=100_000)


class RetentionObject(BaseModel):
    object: Literal["model.retention"] = "model.retention"
    model: str
    keep_last: int | None
    pinned: list[int] = Field(description="Versions kept whatever their age.")


class RemovedVersion(BaseModel):
    version: int
    bytes: int = Field(description="Size of the checkpoint it removed (would remove, on a dry run).")


class SweepObject(BaseModel):
    object: Literal["model.retention_sweep"] = "model.retention_sweep"
    model: str
    keep_last: int | None
    dry_run: bool
    deleted: list[RemovedVersion] = Field(description="The versions whose checkpoints went (would go).")
    bytes_freed: int


class ModelDeleted(BaseModel):
    id: str
    object: Literal["model"] = "model"
    deleted: bool = True
    bytes_freed: int
    completed: bool = Field(description="False while a job it cancelled still stops: the lineage is gone from "
                                        "the API already and its files go as soon as the job has ended.")


class WebhookUpdate(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"webhook_url": "https://ci.example.com/sculpt"}]})

    webhook_url: str | None = Field(max_length=2048, description="Where each head change is posted as a "
                                                                 "signed 'model.head_changed' event; null: nowhere.")


class WebhookObject(BaseModel):
    object: Literal["model.webhook"] = "model.webhook"
    model: str
    webhook_url: str | None
