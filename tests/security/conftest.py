from tests.worker.conftest import tiny_base, workers  # noqa: F401  (a tiny model, real worker processes)
