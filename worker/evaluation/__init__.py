"""Evaluation of a model version: task scores, perplexity drift and the safety suite."""

from worker.evaluation.perplexity import perplexity
from worker.evaluation.safety import DEFAULT_REFUSAL_PHRASES, is_refusal, safety_rates
from worker.evaluation.scoring import score_task

__all__ = [
    "DEFAULT_REFUSAL_PHRASES",
    "is_refusal",
    "perplexity",
    "safety_rates",
    "score_task",
]
