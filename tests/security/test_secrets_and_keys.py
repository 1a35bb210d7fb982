"""Against a real ``sculpt serve`` process: no API key, key hash or stack trace in any response or
log line, and a key revoked from another process stops working at once."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from app.keys.service import hash_key
from tests.api.helpers import jsonl
from tests.faults.api_process import ApiProcess


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli.main", *args], capture_output=True, text=True, check=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(request, tmp_path):
    # On PostgreSQL keys are cached in memory and emptied by change notifications: revoking must still bite.
    request.getfixturevalue("sqlite_env" if request.param == "sqlite" else "pg_env")
    with ApiProcess(tmp_path / "api.log") as server:
        yield server


def _traffic(url: str, secret: str, base_model_dir) -> list[httpx.Response]:
    """A session of ordinary and bad calls, with the right key, a near miss and none."""
    good = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=url, timeout=30) as client:
        return [
            client.post("/v1/models", json={"id": "m", "base_model": str(base_model_dir)}, headers=good),
            client.post("/v1/files", data={"purpose": "fine-tune"}, headers=good,
                        files={"file": ("t.jsonl", jsonl([{"prompt": "a", "completion": "b"}] * 4))}),
            client.post("/v1/files", data={"purpose": "fine-tune"}, headers=good,
                        files={"file": ("bad.jsonl", b"\xff\xfe not json\n")}),
            client.post("/v1/fine_tuning/jobs", content=b'{"model": ' + b"[" * 5000, headers=good),
            client.post("/v1/fine_tuning/jobs", json={"model": "m", "training_file": "file-nope"}, headers=good),
            client.get("/v1/models/nope", headers=good),
            client.get("/v1/models", headers={"Authorization": f"Bearer {secret}x"}),
            client.get("/v1/models", headers={"Authorization": secret}),
            client.get("/v1/models"),
        ]


def test_no_key_hash_or_stack_trace_in_responses_or_logs(served, base_model_dir):
    secret = _cli("keys", "create", "pipeline").stdout.strip()
    listed = _cli("keys", "list").stdout
    responses = _traffic(served.url, secret, base_model_dir)
    assert [r.status_code for r in responses] == [201, 201, 422, 422, 404, 404, 401, 401, 401]
    served.stop()  # flush and close the log

    log = served.log_path.read_text(errors="replace")
    assert "POST /v1/models" in log  # the access log was captured
    shown = [log, listed, *(r.text for r in responses), *(str(r.headers) for r in responses)]
    for text in shown:
        assert secret not in text and secret[:-4] not in text
        assert hash_key(secret) not in text
        assert "Traceback" not in text and 'File "' not in text


def test_a_key_revoked_from_another_process_stops_working_at_once(served):
    secret = _cli("keys", "create", "pipeline").stdout.strip()
    _cli("keys", "create", "other")
    headers = {"Authorization": f"Bearer {secret}"}
    for _ in range(2):  # the second one is answered from memory where keys are cached
        assert httpx.get(f"{served.url}/v1/models", headers=headers).status_code == 200
    _cli("keys", "revoke", "pipeline")
    refused = httpx.get(f"{served.url}/v1/models", headers=headers)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
