"""The artifact store: uploaded files addressed by sha256, and checkpoint folders, on a local
path (default) or an S3-compatible object store (``SCULPT_ARTIFACT_ROOT=s3://bucket/prefix``).

Code elsewhere names artifacts by key (``file_key``, ``checkpoint_key``) and goes through
``get_storage()``; only this package knows the backend.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from app.core.settings import get_settings
from app.core.storage.base import TMP_PREFIX, Storage, StorageError, sha256_of
from app.core.storage.local import LocalStorage
from app.core.storage.s3 import SCHEME, S3Storage

CHECKPOINTS = "checkpoints"
FILES = "files"
# Every stored checkpoint's list of its files with their sha256 and size, written last.
MANIFEST = "manifest.json"

__all__ = ["CHECKPOINTS", "FILES", "MANIFEST", "TMP_PREFIX", "Storage", "StorageError", "checkpoint_key", "file_key",
           "get_storage", "sha256_of"]


def file_key(sha256: str) -> str:
    return f"{FILES}/{sha256[:2]}/{sha256}"


def checkpoint_key(model_id: str, version: int) -> str:
    return f"{CHECKPOINTS}/{model_id}/v{version}"


def get_storage() -> Storage:
    settings = get_settings()
    return _storage_for(str(settings.resolved_artifact_root), settings.s3_endpoint_url, settings.home_path)


@lru_cache
def _storage_for(root: str, endpoint_url: str | None, home: Path) -> Storage:
    if root.startswith(SCHEME):
        return S3Storage(root, endpoint_url, scratch_root=home / "staging")
    return LocalStorage(Path(root))
