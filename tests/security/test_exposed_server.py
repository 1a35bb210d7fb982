"""`sculpt serve --host 0.0.0.0` as a real process, keys managed from the CLI: revoking the last key locks
the server instead of opening it, on SQLite and on PostgreSQL (where keys are cached per process)."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from tests.faults.api_process import ApiProcess


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli.main", *args], capture_output=True, text=True, check=check)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request):
    request.getfixturevalue("sqlite_env" if request.param == "sqlite" else "pg_env")


def test_refuses_to_start_exposed_without_a_key(backend):
    refused = cli("serve", "--host", "0.0.0.0", "--no-worker", check=False)
    assert refused.returncode == 2 and "refusing to serve on 0.0.0.0 without API keys" in refused.stderr


def test_revoking_the_last_key_locks_an_exposed_server(backend, tmp_path, base_model_dir):
    secret = cli("keys", "create", "ops").stdout.strip()
    with ApiProcess(tmp_path / "api.log", host="0.0.0.0") as server, httpx.Client(base_url=server.url) as client:
        good = {"Authorization": f"Bearer {secret}"}
        for _ in range(2):  # the second is answered from memory on PostgreSQL
            assert client.get("/v1/models", headers=good).status_code == 200
        assert client.get("/readyz").status_code == 200
        cli("keys", "revoke", "ops")

        assert client.get("/v1/models").status_code == 401
        assert client.get("/v1/models", headers=good).status_code == 401
        anonymous = client.post("/v1/models", json={"id": "m", "base_model": str(base_model_dir)})
        assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "invalid_api_key"
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "no valid API key" in ready.json()["error"]["message"]

        reader = cli("keys", "create", "ops", "--scope", "read", "--expires-in", "1h")  # the name is free again
        assert "scopes: read, expires in 1:00:00" in reader.stderr
        headers = {"Authorization": f"Bearer {reader.stdout.strip()}"}
        assert client.get("/v1/models", headers=headers).status_code == 200
        refused = client.post("/v1/models", json={"id": "m", "base_model": str(base_model_dir)}, headers=headers)
        assert refused.status_code == 403 and "'admin' scope" in refused.json()["error"]["message"]
        assert client.get("/readyz").status_code == 200
    assert "auth         every /v1 request needs a valid API key" in server.log_path.read_text()
    listed = cli("keys", "list").stdout.splitlines()
    assert listed[0].startswith("ops\t") and "\tadmin\trevoked " in listed[0]
    assert listed[1].startswith("ops\t") and "\tread\tactive, expires " in listed[1]


def test_bad_key_flags_are_refused_before_anything_is_created(backend):
    for flags in (["--scope", "root"], ["--expires-in", "soon"], ["--expires-in", "0d"]):
        result = cli("keys", "create", "x", *flags, check=False)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert cli("keys", "list").stdout == ""
