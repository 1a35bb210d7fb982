"""GGUF base models: dequantized once into a plain Hugging Face folder that trains like any other.

transformers reads a ``.gguf`` file with the ``gguf`` package and dequantizes every tensor to float32,
but a model loaded that way carries a GGUF ``quantization_config`` and refuses ``save_pretrained``.
Building the same architecture from a config without it and loading the dequantized state dict
gives an ordinary model, saved as safetensors in the dtype the operator chose (``SCULPT_GGUF_DTYPE``) with
its tokenizer (chat template included).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer


def dequantize_gguf(gguf_path: str | Path, out_dir: str | Path, dtype: torch.dtype = torch.float32) -> Path:
    """Write ``gguf_path`` (a causal LM) to ``out_dir`` as a safetensors model folder in ``dtype``."""
    source = Path(gguf_path)
    if not source.is_file():
        raise ValueError(f"cannot read GGUF model {source}: no such file")
    folder, name = str(source.parent), source.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except ImportError as exc:
        raise ValueError(f"cannot read GGUF model {source}: the 'gguf' package is not installed "
                         "(pip install 'sculpt[real]')") from exc
    except Exception as exc:  # a damaged or unsupported file fails in many library-specific ways
        raise ValueError(f"cannot read GGUF model {source}: {type(exc).__name__}: {exc}") from exc
    config = AutoConfig.for_model(**{k: v for k, v in quantized.config.to_dict().items()
                                     if k != "quantization_config"})
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(quantized.state_dict(), strict=False)
    # A tied LM head has no tensor of its own in the file; anything else missing means a bad conversion.
    missing = [key for key in missing if not (key == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise ValueError(f"cannot convert GGUF model {source}: tensors missing {missing[:3]} "
                         f"or unexpected {unexpected[:3]}")
    if config.tie_word_embeddings:
        plain.tie_weights()
    plain.to(dtype)
    out = Path(out_dir)
    plain.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
