"""Artifacts on a local (or mounted) filesystem: temp name, fsync, rename, so a reader never sees
half a file and a crash leaves at most a ``.tmp-*`` entry."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

from app.core.storage.base import TMP_PREFIX, Storage


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    fsync_dir(folder)


class LocalStorage(Storage):
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def key_of(self, uri: str) -> str | None:
        path = Path(uri)
        if not path.is_absolute() or not path.is_relative_to(self.root):
            return None
        return path.relative_to(self.root).as_posix()

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def scratch_file(self, prefix: str) -> Path:
        # In the destination's folder, so storing it is a rename on the same filesystem.
        folder = self._path(prefix)
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=folder)
        os.close(fd)
        return Path(name)

    def scratch_folder(self, key: str) -> Path:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{target.name}-", dir=target.parent))

    def store_file(self, local: Path, key: str) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            local.unlink(missing_ok=True)
            return
        with open(local, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(local, target)
        fsync_dir(target.parent)

    def store_folder(self, local: Path, key: str, last: str) -> None:  # noqa: ARG002 - one rename publishes all
        # ``local`` is already a temp name next to ``key``; the rename publishes every file at once.
        target = self._path(key)
        _fsync_tree(local)
        if target.exists():  # left by an attempt that died before its version row: never referenced
            shutil.rmtree(target)
        os.replace(local, target)
        fsync_dir(target.parent)

    def read_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def open(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")

    def download_file(self, key: str, dest: Path) -> None:
        shutil.copyfile(self._path(key), dest)

    def download_folder(self, key: str, dest: Path) -> None:
        shutil.copytree(self._path(key), dest, dirs_exist_ok=True)

    def sizes(self, prefix: str) -> dict[str, int]:
        folder = self._path(prefix)
        return {p.relative_to(folder).as_posix(): p.stat().st_size
                for p in sorted(folder.rglob("*")) if p.is_file()}

    def children(self, prefix: str) -> list[str]:
        folder = self._path(prefix)
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    def remove_stale_scratch(self, older_than_s: float) -> list[str]:
        cutoff = time.time() - older_than_s
        removed = []
        folder = self._path("files")
        for entry in folder.rglob(f"{TMP_PREFIX}*") if folder.is_dir() else ():
            if entry.stat().st_mtime < cutoff:
                entry.unlink(missing_ok=True)
                removed.append(str(entry))
        return removed
