from tests.worker.conftest import tiny_base, workers  # noqa: F401  (the same real-process fixtures)
