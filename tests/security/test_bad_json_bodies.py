"""JSON request bodies a client should never send: each gets a 4xx in the error shape and nothing
is stored. (Uploaded datasets have their own checks in tests/api/test_files.py.)"""

from __future__ import annotations

import pytest

from tests.api.helpers import register, upload_ok

JOB = b'{"model": "m", "training_file": "%s", '
CASES = {
    "nested 100000 deep": b'"metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "objects nested 50000 deep": b'"metadata": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}",
    "an integer of 5000 digits": b'"seed": ' + b"9" * 5000 + b"}",
    "an integer of 4000 digits": b'"seed": ' + b"9" * 4000 + b"}",
    "a float beyond double": b'"seed": 1e400}',
    "NaN": b'"continual": {"learning_rate": NaN}}',
    "a huge learning-rate multiplier": b'"hyperparameters": {"learning_rate_multiplier": 1e308}}',
    "bytes that are not UTF-8": b'"suffix": "\xff\xfe"}',
}


@pytest.mark.parametrize("case", CASES)
def test_hostile_job_bodies_get_a_4xx_and_store_nothing(sqlite_client, base_model_dir, case):
    register(sqlite_client, "m", base_model_dir)
    body = JOB % upload_ok(sqlite_client).encode() + CASES[case]
    response = sqlite_client.post("/v1/fine_tuning/jobs", content=body,
                                  headers={"content-type": "application/json"})
    assert response.status_code in (400, 413, 422), response.text
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert sqlite_client.get("/v1/fine_tuning/jobs").json()["data"] == []
