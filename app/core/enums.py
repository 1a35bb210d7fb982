"""Names the API, the worker, monitoring and the CLI share, each defined once (torch-free).

Strategy names are not here: strategies are plug-ins, named by the registry in ``app.jobs.strategies``.
"""

from __future__ import annotations

JOB_STATUSES = ("validating_files", "queued", "running", "succeeded", "failed", "cancelled")
TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")
# What a running job is doing, in the order a job goes through them ("decomposing": adaptive_svd only;
# "evaluating_base": scoring the model before training, long on a lineage's first job, which asks the base
# every suite).
PHASES = ("loading", "evaluating_base", "calibrating", "decomposing", "training", "evaluating", "saving")
METRICS = ("exact_match", "contains", "rouge_l", "choice")
SHARDINGS = ("ddp", "fsdp")
RETENTION_MODES = ("adaptive", "fixed")
RETENTION_BASES = ("weights", "activations", "both")
