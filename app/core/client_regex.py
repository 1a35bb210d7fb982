"""Regular expressions that clients send (``continual.retention.target_regex``), run by RE2.

RE2 matches in time linear in the text whatever the pattern, where Python's ``re`` backtracks: a pattern
like ``^(.|.)*Z`` would hold a worker for minutes on one module name. RE2 has no backreferences or
lookaround, so a pattern using them is refused when the job is created, never when it runs.
"""

from __future__ import annotations

from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is the client's error, reported to it; not a log line


def compile_client_regex(pattern: str) -> Any:
    """The compiled pattern (``.search(text)`` as ``re``'s); ValueError saying why RE2 refuses it."""
    try:
        return re2.compile(pattern, options=_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"not a regular expression this server runs ({reason}; patterns run in linear time, "
                         "without backreferences or lookaround)") from exc
