"""Job failures with a code and a message a user can act on."""

from __future__ import annotations

import errno

from app.core.storage import StorageError


class JobFailed(Exception):
    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


class LeaseLost(Exception):
    """Another worker took over the lineage: stop without recording anything."""


def failure_of(exc: BaseException) -> tuple[str, str] | None:
    """Map an exception to (error code, message a user can act on); None for unexpected ones."""
    from worker.engine import NonFiniteLoss, RankFailed, SettingsError

    if isinstance(exc, JobFailed):
        return exc.code, exc.message
    if isinstance(exc, SettingsError):
        return exc.code, f"{exc}. The head is unchanged"
    if isinstance(exc, RankFailed):
        return "training_process_failed", f"{exc}. The head is unchanged"
    if isinstance(exc, NonFiniteLoss):
        return "nan_loss", f"training stopped: {exc}. Try a lower learning rate or check the data for outliers."
    if type(exc).__name__ == "OutOfMemoryError" or isinstance(exc, MemoryError):
        return "out_of_memory", ("the model did not fit in memory while training; lower batch_size "
                                 "(gradient accumulation keeps the effective batch) or use a smaller model")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk_full", "the artifact store ran out of space while saving the checkpoint; free space and retry"
    if isinstance(exc, StorageError):
        return "artifact_store_error", f"{exc}. The head is unchanged; retry the job once the store is back"
    return None
