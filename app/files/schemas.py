from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class FileObject(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "file-3b1f0c2e9a7d4c5b8e6f1a2b", "object": "file", "bytes": 1834, "created_at": 1767225600,
        "filename": "task-a.jsonl", "purpose": "fine-tune", "status": "processed", "status_details": None,
        "lines": 40, "record_format": "prompt",
        "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    }]})

    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"]
    status_details: str | None = None
    lines: int
    record_format: str
    sha256: str


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True
