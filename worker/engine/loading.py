"""Loading a base or checkpoint directory safely: safetensors only, no remote code unless allowed."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def model_kind(config) -> str:
    return "seq2seq" if getattr(config, "is_encoder_decoder", False) else "causal"


def _refuse_pickles(directory: Path) -> None:
    unsafe = sorted(p.name for p in directory.rglob("*") if p.suffix in UNSAFE_SUFFIXES)
    if unsafe:
        raise ValueError(
            f"refusing to load {directory}: it holds pickle-based files ({', '.join(unsafe[:5])}); "
            "only safetensors checkpoints are accepted"
        )


def load_model_and_tokenizer(path, *, trust_remote_code: bool = False, device: str | None = None):
    """Load (model, tokenizer, kind) in float32 from a local directory (or a cached hub id), whatever dtype it
    is stored in: training's master weights (``precision``; ``stored_dtype`` says the stored one).

    kind is "causal" or "seq2seq", read from the config.
    """
    location = Path(path)
    if location.is_dir():
        _refuse_pickles(location)
        if not any(location.glob("*.safetensors")):
            raise ValueError(f"cannot load model from {location}: no *.safetensors weights in it")
    try:
        config = AutoConfig.from_pretrained(str(path), trust_remote_code=trust_remote_code)
        kind = model_kind(config)
        auto = AutoModelForSeq2SeqLM if kind == "seq2seq" else AutoModelForCausalLM
        model = auto.from_pretrained(
            str(path),
            config=config,
            dtype=torch.float32,
            use_safetensors=True,
            trust_remote_code=trust_remote_code,
        )
        tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    except Exception as exc:  # a corrupt or partial directory fails in many library-specific ways
        raise ValueError(f"cannot load model from {path}: {type(exc).__name__}: {exc}") from exc
    if tokenizer.eos_token_id is None:
        raise ValueError(f"cannot train {path}: its tokenizer has no eos token")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if device is not None:
        model.to(device)
    return model.eval(), tokenizer, kind
