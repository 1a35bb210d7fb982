from __future__ import annotations

import pytest

from tests.conftest import reset_caches
from tests.webhooks.receiver import Receiver
from tests.worker.conftest import tiny_base, workers  # noqa: F401  (real worker processes)

SECRET = "whsec-test-0123456789"


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def webhooks_on(monkeypatch, receiver):
    """Webhooks allowed to the receiver (an allowed host names its port), with fast retries; call after the
    environment fixture."""
    monkeypatch.setenv("SCULPT_WEBHOOK_ALLOWED_HOSTS", f"127.0.0.1:{receiver.server.server_address[1]}")
    monkeypatch.setenv("SCULPT_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("SCULPT_WEBHOOK_ATTEMPTS", "3")
    monkeypatch.setenv("SCULPT_WEBHOOK_BACKOFF_SECONDS", "0.2")
    monkeypatch.setenv("SCULPT_WEBHOOK_TIMEOUT_SECONDS", "2")
    reset_caches()
