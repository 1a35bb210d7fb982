from tests.dashboard.conftest import live_url  # noqa: F401 - a live server for the --via-api test
from tests.worker.conftest import workers  # noqa: F401 - real Celery workers
