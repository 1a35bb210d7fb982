from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class WorkerObject(BaseModel):
    id: str = Field(description="The worker's node name (its Celery hostname).")
    object: Literal["worker"] = "worker"
    queues: list[str] = Field(description="The queues it takes jobs from.")
    started_at: int
    seen_at: int = Field(description="Its last heartbeat; a worker not seen for SCULPT_WORKER_LIVE_SECONDS is gone.")
