"""Names the API, the worker, monitoring and the CLI share (torch-free).

Strategy names are not here: strategies are plug-ins, named by the registry in ``app.jobs.strategies``.
"""

from __future__ import annotations

from enum import StrEnum

JOB_STATUSES = ("validating_files", "queued", "running", "succeeded", "failed", "cancelled")
TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")
PENDING_STATUSES = ("queued", "running")  # a job a worker has yet to run or to finish
# What a running job is doing, in the order a job goes through them ("decomposing": adaptive_svd only;
# "evaluating_base": scoring the model before training, long on a lineage's first job, which asks the base
# every suite).
PHASES = ("loading", "evaluating_base", "calibrating", "decomposing", "training", "evaluating", "saving")
# The task metrics a job may ask for (continual.metric); the worker scores each of these.
METRICS = ("exact_match", "contains", "rouge_l", "choice")
# A job's loss-curve point, in its metrics events and as the columns of its results file, in this order.
STEP_METRICS = ("step", "train_loss", "valid_loss", "lr", "tokens_per_second", "epoch")
RESULTS_PURPOSE = "fine-tune-results"  # the purpose of a job's results file (OpenAI's name)
SHARDINGS = ("ddp", "fsdp")
RETENTION_MODES = ("adaptive", "fixed")
RETENTION_BASES = ("weights", "activations", "both")


class EventType(StrEnum):
    """A job event's type, as OpenAI's events have it: a line for people, or figures in its data."""

    MESSAGE = "message"
    METRICS = "metrics"
