"""Outages of the services around Sculpt: Redis restarted with jobs queued, PostgreSQL cut off,
the artifact disk full while saving."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import reset_caches
from tests.faults.invariants import assert_lineage_intact
from tests.faults.services import PrivateRedis, TcpProxy
from tests.worker.harness import leftovers, records, submit, upload, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def private_redis(monkeypatch):
    server = PrivateRedis()
    server.start()
    monkeypatch.setenv("SCULPT_BROKER_URL", server.url)
    reset_caches()
    yield server
    server.stop()


def test_jobs_queued_when_redis_restarts_still_run(pg_env, private_redis, tiny_base, workers):
    from fastapi.testclient import TestClient

    from app.main import create_app

    client = TestClient(create_app())
    client.post("/v1/models", json={"id": "q", "base_model": str(tiny_base)})
    file_id = upload(client, records("q"))
    job_ids = [submit(client, "q", file_id, f"q{i}") for i in range(2)]
    private_redis.stop()   # every queued message is gone with it
    private_redis.start()
    workers(1)
    jobs = [wait_for(client, job_id, timeout=300) for job_id in job_ids]
    assert [j["status"] for j in jobs] == ["succeeded", "succeeded"]
    assert [j["fine_tuned_model"] for j in jobs] == ["q:v2", "q:v3"]


def test_postgres_cut_off_gives_clear_503s_and_recovers_without_a_restart(pg_env, pg_database_url, monkeypatch):
    from fastapi.testclient import TestClient

    from app.main import create_app

    proxy = TcpProxy(5432)
    proxy.start()
    monkeypatch.setenv("SCULPT_DATABASE_URL", pg_database_url.replace(":5432/", f":{proxy.port}/"))
    reset_caches()
    client = TestClient(create_app())
    assert client.get("/readyz").status_code == 200
    assert client.get("/v1/models").status_code == 200

    proxy.cut()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "database" in ready.json()["error"]["message"]
    down = client.get("/v1/models")
    assert down.status_code == 503
    assert "database" in down.json()["error"]["message"] and "Traceback" not in down.text

    proxy.start()
    assert client.get("/readyz").status_code == 200
    assert client.get("/v1/models").status_code == 200
    proxy.cut()


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """An artifact root on a 1 MiB tmpfs: room for the uploads, not for a checkpoint."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)], check=False).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    monkeypatch.setenv("SCULPT_ARTIFACT_ROOT", str(mount))
    reset_caches()
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_while_saving_fails_the_job_and_leaves_nothing(pg_env, small_disk, tiny_base, workers):
    from fastapi.testclient import TestClient

    from app.main import create_app

    client = TestClient(create_app())
    client.post("/v1/models", json={"id": "d", "base_model": str(tiny_base)})
    job_id = submit(client, "d", upload(client, records("d")), "d")
    workers(1)
    job = wait_for(client, job_id, timeout=300)
    assert job["status"] == "failed" and job["error"]["code"] == "disk_full", job
    assert "space" in job["error"]["message"]
    assert leftovers(Path(small_disk)) == []
    assert_lineage_intact(client, "d", Path(small_disk))
