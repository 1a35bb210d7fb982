"""Checkpoints: stored complete or not at all, with a manifest of every file's sha256.

A checkpoint is a plain Hugging Face folder (safetensors + tokenizer) plus ``manifest.json``.
It is written to a local scratch folder, then stored at its key through the artifact store
(under a temporary name, the manifest last). The version row that points at it is inserted by
the caller only after ``verify_stored`` has read the manifest back.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import shutil
from pathlib import Path

from app.core.storage import MANIFEST, StorageError, checkpoint_key, get_storage, sha256_of

log = logging.getLogger("sculpt.worker")

__all__ = ["MANIFEST", "CorruptCheckpoint", "checkpoint_key", "discard", "save_checkpoint",
           "verify_checkpoint", "verify_stored"]


class CorruptCheckpoint(Exception):
    pass


def _files_of(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST]


def _file_hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256_of(p) for p in _files_of(folder)}


def save_checkpoint(model, tokenizer, key: str, extra: dict | None = None, dtype=None) -> str:
    """Store model + tokenizer + manifest at ``key`` atomically; returns the manifest's sha256.

    ``dtype`` (a torch dtype): the weights' dtype in the checkpoint; the model is cast to it in place, one
    tensor at a time, so saving a bfloat16 version of float32 weights never holds both copies whole.
    """
    storage = get_storage()
    folder = storage.scratch_folder(key)
    try:
        if dtype is not None:
            model.to(dtype)
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
        # Sizes let the store's copy be checked without downloading it again.
        manifest = {"files": _file_hashes(folder),
                    "bytes": {p.relative_to(folder).as_posix(): p.stat().st_size for p in _files_of(folder)},
                    **(extra or {})}
        payload = json.dumps(manifest, indent=2, sort_keys=True).encode()
        (folder / MANIFEST).write_bytes(payload)
        storage.store_folder(folder, key, last=MANIFEST)
    except BaseException as exc:
        shutil.rmtree(folder, ignore_errors=True)
        if not isinstance(exc, OSError) and "No space left on device" in str(exc):
            # safetensors reports a full disk as its own error type; say what it is.
            raise OSError(errno.ENOSPC, f"no space left on device while writing {storage.uri(key)}") from exc
        raise
    return hashlib.sha256(payload).hexdigest()


def verify_stored(key: str, expected_sha256: str) -> str:
    """Read the stored manifest back: it must hash to ``expected_sha256`` and every file it lists
    must be in the store with its recorded size, and nothing else. Returns the checkpoint's uri."""
    storage = get_storage()
    where = storage.uri(key)
    try:
        payload = storage.read_bytes(f"{key}/{MANIFEST}")
    except FileNotFoundError as exc:
        raise CorruptCheckpoint(f"{where} has no {MANIFEST}") from exc
    if hashlib.sha256(payload).hexdigest() != expected_sha256:
        raise CorruptCheckpoint(f"{where}/{MANIFEST} does not match the sha256 recorded for this version")
    manifest = json.loads(payload)
    stored = {name: size for name, size in storage.sizes(key).items() if name != MANIFEST}
    if stored != manifest["bytes"]:
        bad = sorted(set(stored.items()) ^ set(manifest["bytes"].items()))
        raise CorruptCheckpoint(f"{where}: stored files differ from the manifest: {[n for n, _ in bad][:5]}")
    return where


def discard(key: str) -> None:
    """Remove a checkpoint no version row points at; if the store is down, the reconciler's sweep will."""
    try:
        get_storage().delete(key)
    except StorageError as exc:
        log.warning("could not remove %s now; the sweep will: %s", key, exc)


def verify_checkpoint(folder: Path, expected_sha256: str | None = None) -> None:
    """Raise CorruptCheckpoint unless every file of a local folder matches the manifest (and the
    manifest its hash)."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise CorruptCheckpoint(f"{folder} has no {MANIFEST}")
    if expected_sha256 and sha256_of(manifest_path) != expected_sha256:
        raise CorruptCheckpoint(f"{folder}/{MANIFEST} does not match the sha256 recorded for this version")
    recorded = json.loads(manifest_path.read_text())["files"]
    actual = _file_hashes(folder)
    if recorded != actual:
        bad = sorted(set(recorded.items()) ^ set(actual.items()))
        raise CorruptCheckpoint(f"{folder}: files differ from the manifest: {[name for name, _ in bad][:5]}")
