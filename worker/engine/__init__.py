"""Sculpt's training engine: constrained full fine-tuning (adaptive_svd) and its baselines.

model, tokenizer, kind = load_model_and_tokenizer(path)
result = train_task(model, tokenizer, records, TrainConfig(), tasks_learned=2, prior_records=old)
result.model.save_pretrained(out)   # a plain safetensors checkpoint
"""

from .config import (
    NonFiniteLoss,
    ProgressInfo,
    SettingsError,
    TrainConfig,
    TrainingCancelled,
    TrainResult,
)
from .distributed import RankFailed
from .loading import load_model_and_tokenizer
from .trainer import train_task

__all__ = [
    "NonFiniteLoss",
    "ProgressInfo",
    "RankFailed",
    "SettingsError",
    "TrainConfig",
    "TrainResult",
    "TrainingCancelled",
    "load_model_and_tokenizer",
    "train_task",
]
