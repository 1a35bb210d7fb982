"""Files the worker makes: a job's results file, as OpenAI writes one (a CSV of its loss curve, purpose
'fine-tune-results', listed in the job's ``result_files`` and read back with GET /v1/files/{id}/content),
and bytes put in the content-addressed store (a held-out split)."""

from __future__ import annotations

import csv
import hashlib
import io

from app.core.db.tables import File
from app.core.enums import RESULTS_PURPOSE, STEP_METRICS
from app.core.ids import new_id
from app.core.storage import file_key, get_storage


def store_content(payload: bytes) -> str:
    """Put bytes in the content-addressed file store; returns their sha256 (the key of ``file_key``)."""
    digest = hashlib.sha256(payload).hexdigest()
    storage = get_storage()
    key = file_key(digest)
    tmp = storage.scratch_file(key.rpartition("/")[0])
    tmp.write_bytes(payload)
    storage.store_file(tmp, key)
    return digest


def metrics_csv(points: list[dict]) -> bytes:
    """One row per loss-curve point; an empty cell where a value was not measured (valid_loss off epoch ends)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(STEP_METRICS)
    writer.writerows([["" if point.get(c) is None else point[c] for c in STEP_METRICS] for point in points])
    return out.getvalue().encode()


def results_file(job_id: str, points: list[dict]) -> File:
    """Store the CSV and return its file row, for the caller to add in the transaction that ends the job."""
    payload = metrics_csv(points)
    return File(id=new_id("file"), filename=f"{job_id}-step_metrics.csv", purpose=RESULTS_PURPOSE, bytes=len(payload),
                sha256=store_content(payload), line_count=len(points) + 1, record_format="csv",
                status="processed")
