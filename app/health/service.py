"""Readiness: can we reach the database and the broker right now?"""

from __future__ import annotations

import tempfile

from sqlalchemy import text

from app.core.db.session import get_engine, new_session
from app.core.settings import Settings
from app.keys.service import any_key_created, any_usable_key

PROBE_TIMEOUT_SECONDS = 2.0


def database_problem() -> str | None:
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the reason goes to the operator
        return f"database unreachable ({type(exc).__name__})"
    return None


def auth_problem(settings: Settings) -> str | None:
    """A server that requires keys (or once had one) but has no usable one answers every /v1 request with 401:
    say so."""
    try:
        with new_session(reads_only=True) as session:
            if any_usable_key(session) or not (settings.auth_required or any_key_created(session)):
                return None
    except Exception:  # noqa: BLE001 - the database check reports an outage
        return None
    return ("no valid API key: every /v1 request is refused with 401 until one is created "
            "(`sculpt keys create NAME`)")


def broker_problem(settings: Settings) -> str | None:
    url = settings.resolved_broker_url
    try:
        if settings.is_embedded_broker:
            folder = settings.broker_folder / "out"
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        elif url.startswith(("redis://", "rediss://")):
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
                                          socket_timeout=PROBE_TIMEOUT_SECONDS)
            try:
                client.ping()
            finally:
                client.close()
        else:
            from kombu import Connection

            with Connection(url, connect_timeout=PROBE_TIMEOUT_SECONDS) as connection:
                connection.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return f"broker unreachable ({type(exc).__name__})"
    return None
