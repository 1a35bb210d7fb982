"""The artifact store: uploaded files addressed by sha256, and checkpoint folders.

Everything is written to a temporary name, fsynced and renamed into place, so a reader
never sees half a file and a crash leaves at most a ``.tmp-*`` entry that ``sweep_temp``
removes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from app.settings import get_settings

TMP_PREFIX = ".tmp-"


def artifact_root() -> Path:
    root = get_settings().resolved_artifact_root
    root.mkdir(parents=True, exist_ok=True)
    return root


def files_dir() -> Path:
    path = artifact_root() / "files"
    path.mkdir(parents=True, exist_ok=True)
    return path


def checkpoints_dir() -> Path:
    path = artifact_root() / "checkpoints"
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_path(sha256: str) -> Path:
    return files_dir() / sha256[:2] / sha256


def new_temp_file(directory: Path) -> tuple[int, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=directory)
    return fd, Path(name)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_file(tmp: Path, sha256: str) -> Path:
    """Move a fully written temp file to its content address (a no-op if it is already there)."""
    target = file_path(sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        tmp.unlink(missing_ok=True)
    else:
        os.replace(tmp, target)
        fsync_dir(target.parent)
    return target


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sweep_temp(root: Path | None = None) -> int:
    """Remove temp files and half-written checkpoint folders left by a crash."""
    root = root or artifact_root()
    removed = 0
    for path in root.rglob(f"{TMP_PREFIX}*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed
