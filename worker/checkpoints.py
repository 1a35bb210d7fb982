"""Checkpoints: written complete or not at all, with a manifest of every file's sha256.

A checkpoint is a plain Hugging Face folder (safetensors + tokenizer) plus ``manifest.json``.
It is written under a ``.tmp-*`` name, fsynced, then renamed into place; the version row that
points at it is inserted only after that, by the caller.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

from app.storage import TMP_PREFIX, checkpoints_dir, fsync_dir, sha256_of

MANIFEST = "manifest.json"


class CorruptCheckpoint(Exception):
    pass


def checkpoint_dir(model_id: str, version: int) -> Path:
    return checkpoints_dir() / model_id / f"v{version}"


def _file_hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256_of(p)
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    fsync_dir(folder)


def save_checkpoint(model, tokenizer, target: Path, extra: dict | None = None) -> str:
    """Write model + tokenizer + manifest to ``target`` atomically; returns the manifest's sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f"{TMP_PREFIX}{target.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        manifest = {"files": _file_hashes(tmp), **(extra or {})}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        _fsync_tree(tmp)
        if target.exists():  # left by an attempt that died before its version row: never referenced
            shutil.rmtree(target)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if not isinstance(exc, OSError) and "No space left on device" in str(exc):
            # safetensors reports a full disk as its own error type; say what it is.
            raise OSError(errno.ENOSPC, f"no space left on device while writing {target}") from exc
        raise
    return manifest_sha256(target)


def manifest_sha256(folder: Path) -> str:
    return hashlib.sha256((folder / MANIFEST).read_bytes()).hexdigest()


def verify_checkpoint(folder: Path, expected_sha256: str | None = None) -> None:
    """Raise CorruptCheckpoint unless every file matches the manifest (and the manifest its hash)."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise CorruptCheckpoint(f"{folder} has no {MANIFEST}")
    if expected_sha256 and manifest_sha256(folder) != expected_sha256:
        raise CorruptCheckpoint(f"{folder}/{MANIFEST} does not match the sha256 recorded for this version")
    recorded = json.loads(manifest_path.read_text())["files"]
    actual = _file_hashes(folder)
    if recorded != actual:
        bad = sorted(set(recorded.items()) ^ set(actual.items()))
        raise CorruptCheckpoint(f"{folder}: files differ from the manifest: {[name for name, _ in bad][:5]}")
