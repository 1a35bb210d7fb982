"""An S3 API served over HTTP in this process (moto's server mode) and a Sculpt whose artifact
root is a fresh bucket on it. Worker subprocesses inherit the endpoint and fake credentials."""

from __future__ import annotations

import logging
import secrets
import socket

import pytest

from tests.conftest import _client, reset_caches
from tests.worker.conftest import tiny_base, workers  # noqa: F401  (the same real-process fixtures)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, monkeypatch):
    """A new bucket; its s3fs filesystem (to look inside) is returned."""
    import s3fs

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    name = f"sculpt-{secrets.token_hex(4)}"
    fs = s3fs.S3FileSystem(endpoint_url=s3_endpoint, use_listings_cache=False, skip_instance_cache=True)
    fs.mkdir(name)
    fs.bucket = name
    return fs


def _use_bucket(monkeypatch, s3_endpoint, bucket) -> None:
    monkeypatch.setenv("SCULPT_ARTIFACT_ROOT", f"s3://{bucket.bucket}/sculpt")
    monkeypatch.setenv("SCULPT_S3_ENDPOINT_URL", s3_endpoint)
    reset_caches()


@pytest.fixture
def s3_env(sqlite_env, s3_endpoint, bucket, monkeypatch):
    """The embedded SQLite + filesystem broker, artifacts in the bucket."""
    from app.core.settings import get_settings

    _use_bucket(monkeypatch, s3_endpoint, bucket)
    return get_settings()


@pytest.fixture
def s3_pg_env(pg_env, s3_endpoint, bucket, monkeypatch):
    """PostgreSQL + Redis, artifacts in the bucket."""
    from app.core.settings import get_settings

    _use_bucket(monkeypatch, s3_endpoint, bucket)
    return get_settings()


@pytest.fixture
def s3_client(s3_env):
    return _client()


@pytest.fixture
def s3_pg_client(s3_pg_env):
    return _client()


def stored_keys(bucket, prefix: str = "") -> list[str]:
    """Every object key under the bucket's Sculpt root (relative to it)."""
    root = f"{bucket.bucket}/sculpt/"
    return sorted(name[len(root):] for name in bucket.find(root + prefix))
