"""The worker's leases while it runs: its identity, and the heartbeat that renews the lineage's lock and the
running job's lease (``app.lineages.lock``, ``app.jobs.attempts``), so a killed worker frees both."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from functools import lru_cache
from typing import Self

from app.core.settings import get_settings
from app.jobs.attempts import renew_leases

log = logging.getLogger("sculpt.worker")


@lru_cache
def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Heartbeat:
    """Renews the leases in a background thread while the job runs in the foreground."""

    def __init__(self, model_id: str, owner: str) -> None:
        self.model_id = model_id
        self.owner = owner
        self.job_id: str | None = None
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sculpt-heartbeat", daemon=True)

    def _run(self) -> None:
        interval = get_settings().heartbeat_seconds
        while not self._stop.wait(interval):
            try:
                if not renew_leases(self.model_id, self.job_id, self.owner):
                    self.lost.set()
            except Exception as exc:  # noqa: BLE001 - a database blip: the lease outlives several beats
                log.warning("heartbeat for lineage %s failed: %s", self.model_id, exc)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
