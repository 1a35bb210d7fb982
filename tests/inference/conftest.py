from __future__ import annotations

from tests.worker.conftest import tiny_base  # noqa: F401 - the tiny base model fixture, shared
