"""Suite results on a base model, kept once per (base weights, suite records): a suite's results on a model
depend on nothing else, so a second lineage on the same base file reuses the first one's instead of asking
the base the same 120 questions again (minutes on a real model). The ``base_scores`` table is the worker's
alone (the API neither reads nor writes it): this module is its one reader and writer."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.core.db.session import session_scope
from app.core.db.tables import BaseScore
from app.core.settings import get_settings
from app.core.storage import sha256_of

# Raised whenever how a suite asks or scores a model changes (the base-model question form, <bos>), so
# results kept by the code before are not reused as if measured now.
SCORING_VERSION = 2


def base_fingerprint(uri: str, sha256: str | None) -> str | None:
    """The sha256 that names a version's weights: a stored checkpoint's own; for a base registered by path, the
    file's with the dtype it is dequantized to (GGUF) or the folder's files' (name and sha256 of each); None for a
    hub id (nothing local to hash)."""
    if sha256 is not None:
        return sha256
    path = Path(uri)
    if path.is_file():
        return hashlib.sha256(f"{sha256_of(path)}\0{get_settings().gguf_dtype}".encode()).hexdigest()
    if not path.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{sha256_of(file)}\n".encode())
    return digest.hexdigest()


def data_fingerprint(records: list[dict]) -> str:
    """The suite's records, and the version of the code that scores them."""
    text = json.dumps({"scoring": SCORING_VERSION, "records": records}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def kept_results(base_sha256: str, suite: str, data_sha256: str) -> dict | None:
    """A suite's results on a base measured before (by any lineage), or None."""
    with session_scope() as session:
        return session.scalar(select(BaseScore.results).where(
            BaseScore.base_sha256 == base_sha256, BaseScore.suite == suite, BaseScore.data_sha256 == data_sha256))


def keep_results(base_sha256: str, suite: str, data_sha256: str, results: dict) -> None:
    try:
        with session_scope() as session:
            session.add(BaseScore(base_sha256=base_sha256, suite=suite, data_sha256=data_sha256, results=results))
    except IntegrityError:
        pass  # another worker kept the same results first
