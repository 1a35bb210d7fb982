"""This machine's copies of stored artifacts, keyed by sha256 under ``SCULPT_HOME/cache``, so a
checkpoint or file held in an object store is downloaded once per machine. With a local artifact
root nothing is copied: the stored path is used as it is.

Every download lands under a temp name, is checked against its sha256, then renamed into place;
several workers sharing one SCULPT_HOME may race for the same entry, and the first rename wins.
After each download, the least recently used entries go until the cache fits SCULPT_CACHE_MAX_BYTES.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from app.core.settings import get_settings
from app.core.storage import TMP_PREFIX, file_key, get_storage, sha256_of
from app.lineages.base_models import is_gguf
from worker.checkpoints import CorruptCheckpoint, verify_checkpoint


def cache_root() -> Path:
    path = get_settings().home_path / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


# An entry used this recently is never pruned: another worker on this machine may be loading it.
IN_USE_SECONDS = 600


def _publish(tmp: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, target)
    except OSError:  # another worker put the same content there first
        if not target.exists():
            raise
    if tmp.exists():
        _remove(tmp)
    prune(get_settings().cache_max_bytes, keep=target)
    return target


def _used(path: Path) -> Path:
    os.utime(path)  # the entry's mtime is its last use, for pruning
    return path


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def prune(max_bytes: int, keep: Path | None = None) -> list[str]:
    """Remove least recently used entries until the cache holds at most ``max_bytes`` (0: no limit);
    ``keep`` and entries used in the last IN_USE_SECONDS stay. Returns what was removed."""
    if not max_bytes:
        return []
    entries = []  # (last use, size, path)
    for entry in (e for kind in ("files", "checkpoints", "gguf") for e in (cache_root() / kind).glob("*")):
        try:
            entries.append((entry.stat().st_mtime, _size(entry), entry))
        except FileNotFoundError:  # another worker pruned it meanwhile
            continue
    total, removed = sum(size for _, size, _ in entries), []
    recent = time.time() - IN_USE_SECONDS
    for used, size, entry in sorted(entries):
        if total <= max_bytes:
            break
        if entry != keep and used < recent:
            _remove(entry)
            total -= size
            removed.append(str(entry))
    return removed


def local_file(sha256: str) -> Path:
    """A stored upload (by its sha256) on this machine's disk."""
    storage = get_storage()
    key = file_key(sha256)
    if (path := storage.local_path(key)) is not None:
        return path
    target = cache_root() / "files" / sha256
    if target.exists():
        return _used(target)
    fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=cache_root())
    os.close(fd)
    tmp = Path(name)
    try:
        storage.download_file(key, tmp)
        if sha256_of(tmp) != sha256:
            raise OSError(f"{storage.uri(key)} does not match its sha256 {sha256}")
        return _publish(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def local_file_at(uri: str) -> Path:
    """A file recorded by its uri (a held-out split): through the cache when it is in the store."""
    key = get_storage().key_of(uri)
    return Path(uri) if key is None else local_file(key.rpartition("/")[2])


def local_checkpoint(uri: str, sha256: str | None) -> str:
    """A version's checkpoint as a local folder, verified against its manifest sha256. A base
    model registered by path or hub id (no sha256) is returned as it is, a GGUF file dequantized."""
    if sha256 is None:
        return str(_dequantized(Path(uri))) if is_gguf(uri) else uri
    storage = get_storage()
    key = storage.key_of(uri)
    if key is None or storage.local_path(key) is not None:
        verify_checkpoint(Path(uri), sha256)
        return uri
    target = cache_root() / "checkpoints" / sha256
    if target.exists():
        try:
            verify_checkpoint(target, sha256)
            return str(_used(target))
        except CorruptCheckpoint:  # the local copy was damaged: fetch it again
            shutil.rmtree(target, ignore_errors=True)
    _download_checkpoint(key, sha256, target)
    return str(target)


def _dequantized(gguf: Path) -> Path:
    """A GGUF base as a plain model folder in the operator's ``gguf_dtype``, built once per file content and
    dtype (the first job pays for it)."""
    from worker.engine.gguf import dequantize_gguf
    from worker.engine.precision import DTYPES

    dtype = get_settings().gguf_dtype
    target = cache_root() / "gguf" / f"{sha256_of(gguf)}-{dtype}"
    if (target / "config.json").is_file():
        return _used(target)
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=cache_root()))
    try:
        dequantize_gguf(gguf, tmp, DTYPES[dtype])
        return _publish(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _download_checkpoint(key: str, sha256: str, target: Path) -> None:
    storage = get_storage()
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=cache_root()))
    try:
        storage.download_folder(key, tmp)
        try:
            verify_checkpoint(tmp, sha256)
        except CorruptCheckpoint as exc:
            raise CorruptCheckpoint(f"the copy downloaded from {storage.uri(key)} is damaged: {exc}") from exc
        _publish(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_downloads(older_than_s: float) -> list[str]:
    """Temp entries of downloads that died (a killed worker) more than ``older_than_s`` ago."""
    cutoff = time.time() - older_than_s
    removed = []
    for entry in cache_root().glob(f"{TMP_PREFIX}*"):
        if entry.stat().st_mtime < cutoff:
            _remove(entry)
            removed.append(str(entry))
    return removed
