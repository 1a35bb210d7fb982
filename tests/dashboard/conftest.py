from __future__ import annotations

import pytest

from tests.dashboard.live import live_server
from tests.worker.conftest import tiny_base, workers  # noqa: F401 - fixtures shared with the worker tests


@pytest.fixture
def live_url(sqlite_env):
    """A uvicorn server on the test's SQLite environment."""
    with live_server() as url:
        yield url
