"""No stack traces in any log line: an exception is logged as one line naming its type, message and
the innermost place it was raised.

Operators grep logs and ship them elsewhere; a traceback spreads file paths and local detail over
many lines. The filter goes on the handlers of the API's and the worker's loggers, so it also covers
what uvicorn and Celery log about an exception they caught.
"""

from __future__ import annotations

import logging
import traceback


def describe(exc: BaseException) -> str:
    """``RuntimeError at /path/file.py:12: the message`` (the innermost frame only)."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}: {_one_line(str(exc))}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


class OneLineExceptions(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{_one_line(record.getMessage())} ({describe(record.exc_info[1])})"
            record.args = None
        record.exc_info = record.exc_text = record.stack_info = None
        return True


def install(*logger_names: str) -> None:
    """Put the filter on every handler of the root logger and of the named loggers (idempotent)."""
    for name in ("", *logger_names):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, OneLineExceptions) for f in handler.filters):
                handler.addFilter(OneLineExceptions())
