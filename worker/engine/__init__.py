"""Sculpt's training engine: constrained full fine-tuning (adaptive_svd) and its baselines.

model, tokenizer, kind = load_model_and_tokenizer(path)   # float32 master weights
result = train_task(model, tokenizer, records, TrainConfig(), tasks_learned=2, prior_records=old)
result.model.to(stored_dtype(path)).save_pretrained(out)   # a plain safetensors checkpoint in the base's dtype
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
from .precision import dtype_name, round_to, stored_dtype
from .trainer import train_task

__all__ = [
    "NonFiniteLoss",
    "ProgressInfo",
    "RankFailed",
    "SettingsError",
    "TrainConfig",
    "TrainResult",
    "TrainingCancelled",
    "dtype_name",
    "load_model_and_tokenizer",
    "round_to",
    "stored_dtype",
    "train_task",
]
