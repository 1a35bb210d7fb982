"""Job failures with a code and a message a user can act on."""

from __future__ import annotations


class JobFailed(Exception):
    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


class LeaseLost(Exception):
    """Another worker took over the lineage: stop without recording anything."""
