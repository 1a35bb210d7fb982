"""Artifacts on any S3-compatible object store (AWS S3, MinIO), through fsspec/s3fs.

A single object appears whole or not at all, so files need no temp key. A checkpoint is several
objects: they are uploaded under a temporary key, then copied server-side to their final key with
the manifest last, then the temporary key is removed. Local temp files live under a scratch folder
on this machine. Credentials come from the usual AWS environment variables or config files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from app.core.storage.base import TMP_PREFIX, Storage, StorageError

SCHEME = "s3://"


def _ordered(names: list[str], last: str) -> list[str]:
    return [*sorted(n for n in names if n != last), last]


class S3Storage(Storage):
    def __init__(self, url: str, endpoint_url: str | None, scratch_root: Path) -> None:
        self.base = url.removeprefix(SCHEME).strip("/")
        if not self.base:
            raise ValueError(f"SCULPT_ARTIFACT_ROOT {url!r} names no bucket")
        self.endpoint_url = endpoint_url
        self.scratch_root = scratch_root
        self._fs = None

    @property
    def fs(self):
        if self._fs is None:
            import s3fs  # only S3 deployments pay for importing it

            # No listing cache: a sweep must see what other processes wrote a moment ago.
            self._fs = s3fs.S3FileSystem(endpoint_url=self.endpoint_url, use_listings_cache=False,
                                         skip_instance_cache=True)
        return self._fs

    def _path(self, key: str) -> str:
        return f"{self.base}/{key}"

    @contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        """Store failures become StorageError naming the action; absence stays FileNotFoundError."""
        try:
            yield
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise StorageError(f"could not {action} {self.uri(key)}: {type(exc).__name__}: {exc}") from exc

    def uri(self, key: str) -> str:
        return SCHEME + self._path(key)

    def key_of(self, uri: str) -> str | None:
        prefix = self.uri("")
        return uri[len(prefix):] if uri.startswith(prefix) else None

    def local_path(self, key: str) -> Path | None:  # noqa: ARG002 - Storage's signature
        return None

    def _scratch_dir(self) -> Path:
        self.scratch_root.mkdir(parents=True, exist_ok=True)
        return self.scratch_root

    def scratch_file(self, prefix: str) -> Path:  # noqa: ARG002 - Storage's signature
        fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=self._scratch_dir())
        os.close(fd)
        return Path(name)

    def scratch_folder(self, key: str) -> Path:  # noqa: ARG002 - Storage's signature
        return Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=self._scratch_dir()))

    def store_file(self, local: Path, key: str) -> None:
        try:
            with self._errors("upload", key):
                if not self.fs.exists(self._path(key)):
                    self.fs.put_file(str(local), self._path(key))
        finally:
            local.unlink(missing_ok=True)

    def store_folder(self, local: Path, key: str, last: str) -> None:
        parent, _, name = key.rpartition("/")
        temp_key = f"{parent}/{TMP_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
        names = _ordered([p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()], last)
        try:
            with self._errors("upload", temp_key):
                for rel in names:
                    self.fs.put_file(str(local / rel), self._path(f"{temp_key}/{rel}"))
            self.delete(key)  # left by an attempt that died before its version row: never referenced
            with self._errors("publish", key):
                for rel in names:
                    self.fs.copy(self._path(f"{temp_key}/{rel}"), self._path(f"{key}/{rel}"))
        except BaseException:
            self._delete_quietly(key)
            raise
        finally:
            self._delete_quietly(temp_key)
            shutil.rmtree(local, ignore_errors=True)

    def _delete_quietly(self, key: str) -> None:
        """Best effort: if the store is down, the reconciler's sweep removes it later."""
        with suppress(StorageError):
            self.delete(key)

    def read_bytes(self, key: str) -> bytes:
        with self._errors("read", key):
            return self.fs.cat_file(self._path(key))

    def open(self, key: str) -> BinaryIO:
        with self._errors("read", key):
            return self.fs.open(self._path(key), "rb")

    def download_file(self, key: str, dest: Path) -> None:
        with self._errors("download", key):
            self.fs.get_file(self._path(key), str(dest))

    def download_folder(self, key: str, dest: Path) -> None:
        for rel in self.sizes(key):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            self.download_file(f"{key}/{rel}", dest / rel)

    def sizes(self, prefix: str) -> dict[str, int]:
        root = self._path(prefix).rstrip("/") + "/"
        with self._errors("list", prefix):
            found = self.fs.find(root, detail=True)
        return {name[len(root):]: info["size"] for name, info in sorted(found.items())}

    def children(self, prefix: str) -> list[str]:
        with self._errors("list", prefix):
            try:
                entries = self.fs.ls(self._path(prefix), detail=False)
            except FileNotFoundError:
                return []
        return sorted(entry.rstrip("/").rpartition("/")[2] for entry in entries)

    def delete(self, key: str) -> None:
        with self._errors("delete", key), suppress(FileNotFoundError):
            self.fs.rm(self._path(key), recursive=True)

    def remove_stale_scratch(self, older_than_s: float) -> list[str]:
        cutoff = time.time() - older_than_s
        removed = []
        for entry in self.scratch_root.glob(f"{TMP_PREFIX}*") if self.scratch_root.is_dir() else ():
            if entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)
                removed.append(str(entry))
        return removed
