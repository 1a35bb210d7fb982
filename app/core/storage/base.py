"""The one interface to the artifact store. Everything stored has a key, a relative posix path
(``files/ab/<sha256>``, ``checkpoints/<model>/v<n>/model.safetensors``); callers never learn
which backend holds it."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import BinaryIO

TMP_PREFIX = ".tmp-"


class StorageError(OSError):
    """The artifact store could not be read or written (unreachable, denied, …)."""


class Storage(ABC):
    @abstractmethod
    def uri(self, key: str) -> str:
        """What a row records for ``key``: a local path or an ``s3://`` URL."""

    @abstractmethod
    def key_of(self, uri: str) -> str | None:
        """The key a recorded uri names in this store; None for anything outside it (a base model)."""

    @abstractmethod
    def local_path(self, key: str) -> Path | None:
        """Where ``key`` already is on this machine's disk; None when it has to be downloaded."""

    @abstractmethod
    def scratch_file(self, prefix: str) -> Path:
        """A new empty local temp file, to be stored under ``prefix`` once its content is known."""

    @abstractmethod
    def scratch_folder(self, key: str) -> Path:
        """A new empty local temp folder, to be stored at ``key``."""

    @abstractmethod
    def store_file(self, local: Path, key: str) -> None:
        """Put a complete local file at ``key`` atomically (kept if ``key`` exists: keys are content
        addresses). ``local`` is consumed."""

    @abstractmethod
    def store_folder(self, local: Path, key: str, last: str) -> None:
        """Put a complete local folder at ``key``: written under a temporary key first, the file named
        ``last`` after all others, so a reader that finds ``last`` finds everything. ``local`` is consumed."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """Read a stored file as a stream (FileNotFoundError if absent)."""

    @abstractmethod
    def download_file(self, key: str, dest: Path) -> None: ...

    @abstractmethod
    def download_folder(self, key: str, dest: Path) -> None: ...

    @abstractmethod
    def sizes(self, prefix: str) -> dict[str, int]:
        """Every file under ``prefix``, by its name relative to it, with its size in bytes."""

    @abstractmethod
    def children(self, prefix: str) -> list[str]:
        """Names directly under ``prefix`` (empty when there is nothing)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove a file or everything under a folder key; nothing there is fine."""

    @abstractmethod
    def remove_stale_scratch(self, older_than_s: float) -> list[str]:
        """Remove temp files left by uploads that died more than ``older_than_s`` ago."""


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
