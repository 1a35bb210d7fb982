"""Fault injection for crash tests: hold the process at a named point (SCULPT_FAULT_PAUSE_AT) so a
test can kill it there."""

from __future__ import annotations

import time

from app.core.settings import get_settings


def pause_at(point: str) -> None:
    settings = get_settings()
    if settings.fault_pause_at == point:
        time.sleep(settings.fault_pause_seconds)
