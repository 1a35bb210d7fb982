"""File rows to API objects."""

from __future__ import annotations

from app.core.db.tables import File
from app.core.timeutil import unix
from app.files.schemas import FileObject


def file_object(row: File) -> FileObject:
    return FileObject(id=row.id, bytes=row.bytes, created_at=unix(row.created_at), filename=row.filename,
                      purpose=row.purpose, status=row.status, status_details=row.status_details,
                      lines=row.line_count, record_format=row.record_format, sha256=row.sha256)
