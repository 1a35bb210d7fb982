"""No stack traces in any log line: an exception is logged as one line naming its type, message and
the innermost place it was raised. Every line has one format, text or (SCULPT_LOG_FORMAT=json) JSON
lines, and a worker's lines name the job it runs.

Operators grep logs and ship them elsewhere; a traceback spreads file paths and local detail over
many lines. The filter goes on the handlers of the API's and the worker's loggers, so it also covers
what uvicorn and Celery log about an exception they caught.
"""

from __future__ import annotations

import contextlib
import json
import logging
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(job)s: %(message)s"
# The job this process runs: a worker runs one at a time (--pool solo), and its threads (heartbeat,
# reconciler) log about it too, so a process-wide value rather than a context variable.
_current_job: str | None = None


def describe(exc: BaseException) -> str:
    """``RuntimeError at /path/file.py:12: the message`` (the innermost frame only)."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}: {_one_line(str(exc))}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


@contextlib.contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Name ``job_id`` in every log line of this process while the block runs."""
    global _current_job
    _current_job = job_id
    try:
        yield
    finally:
        _current_job = None


class JobContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        job_id = getattr(record, "job_id", None) or _current_job
        record.job_id = job_id
        record.job = f" [{job_id}]" if job_id else ""
        return True


class JsonLines(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, and job_id when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if job_id := getattr(record, "job_id", None):
            line["job_id"] = job_id
        return json.dumps(line, ensure_ascii=False)


def formatter() -> logging.Formatter:
    from app.core.settings import get_settings

    return JsonLines() if get_settings().log_format == "json" else logging.Formatter(TEXT_FORMAT)


class OneLineExceptions(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{_one_line(record.getMessage())} ({describe(record.exc_info[1])})"
            record.args = None
        record.exc_info = record.exc_text = record.stack_info = None
        return True


def install(*logger_names: str) -> None:
    """Give every handler of the root logger and of the named loggers the one-line filters and the one
    format (idempotent)."""
    shared = formatter()
    for name in ("", *logger_names):
        for handler in logging.getLogger(name).handlers:
            for kind in (OneLineExceptions, JobContext):
                if not any(isinstance(f, kind) for f in handler.filters):
                    handler.addFilter(kind())
            handler.setFormatter(shared)
