"""The held-out set of a job (``validation_file``): what the accuracy matrix scores the task on, so it must
share no record with the training file, or the scores would be measured on data the version was trained on."""

from __future__ import annotations

import json
from collections.abc import Iterator

from app.core.db.tables import File
from app.core.errors import ApiError
from app.core.storage import file_key, get_storage

CODE = "validation_overlaps_training"
WITHOUT = "leave validation_file out to hold out a seeded 10% of the training file instead"


def _records(row: File) -> Iterator[tuple[int, str]]:
    """(line number, the record in a canonical form) of a stored, validated dataset."""
    with get_storage().open(file_key(row.sha256)) as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, json.dumps(json.loads(line), sort_keys=True)


def check_disjoint(training: File, validation: File) -> None:
    """Refuse (400, param validation_file) a held-out set that is the training file or shares records with it."""
    if validation.id == training.id or validation.sha256 == training.sha256:
        same = "is the training file" if validation.id == training.id else \
            f"has the same content as the training file {training.id}"
        raise ApiError(f"validation_file {validation.id} {same}: it is the held-out set the accuracy matrix scores, "
                       f"so scores on it would be measured on training data; {WITHOUT}", param="validation_file",
                       code=CODE)
    trained = {record for _, record in _records(training)}
    shared = [number for number, record in _records(validation) if record in trained]
    if shared:
        lines = ", ".join(map(str, shared[:5])) + (", ..." if len(shared) > 5 else "")
        raise ApiError(f"{len(shared)} record(s) of validation_file {validation.id} (line {lines}) are also in the "
                       f"training file {training.id}: held-out scores must be measured on records the version was "
                       f"not trained on; remove them from one of the files, or {WITHOUT}",
                       param="validation_file", code=CODE)
