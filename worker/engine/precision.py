"""A version keeps its base's dtype; training holds float32 master weights whatever that dtype is.

Why float32 training: AdamW's steps are far below a bfloat16 weight's resolution (8 bits of mantissa), so
training in bfloat16 would round most updates away, and adaptive_svd's projection holds the kept subspace
only to the precision of the arithmetic (≤ 1e-6 in float32). The trained weights are then rounded once to
the base's dtype (``round_to``), before they are evaluated, so a version's metrics describe exactly the
weights it stores.
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from pathlib import Path

import torch
from transformers import AutoConfig

# The dtypes a version may be stored in, by the names safetensors headers and settings use.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_SAFETENSORS_NAMES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _header(file: Path) -> dict:
    with file.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        return json.loads(handle.read(length))


def stored_dtype(path: str | Path, *, trust_remote_code: bool = False) -> torch.dtype:
    """The floating dtype most of a checkpoint's parameters are stored in (float32 when unknown).

    A local folder's safetensors headers say it without loading a tensor; a hub id's config is trusted.
    """
    folder = Path(path)
    if folder.is_dir():
        counts: Counter[torch.dtype] = Counter()
        for file in folder.glob("*.safetensors"):
            for name, entry in _header(file).items():
                if name != "__metadata__" and entry["dtype"] in _SAFETENSORS_NAMES:
                    counts[_SAFETENSORS_NAMES[entry["dtype"]]] += math.prod(entry["shape"])
        return counts.most_common(1)[0][0] if counts else torch.float32
    config = AutoConfig.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    dtype = getattr(config, "dtype", None)
    return dtype if dtype in DTYPES.values() else torch.float32


@torch.no_grad()
def round_to(model, dtype: torch.dtype):
    """Round the floating tensors a checkpoint stores (the state dict: not rotary tables and other buffers a
    load recomputes) to ``dtype``'s precision, in place, keeping their own dtype."""
    for tensor in model.state_dict().values():
        if tensor.is_floating_point() and tensor.dtype != dtype:
            tensor.copy_(tensor.to(dtype))
    return model
