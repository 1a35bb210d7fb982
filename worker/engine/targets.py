"""Which weight matrices the method constrains: the linear layers inside the transformer blocks."""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn
from transformers.pytorch_utils import Conv1D

from app.core.client_regex import compile_client_regex

from .config import SettingsError

# A module inside a block has a numeric index in its path ("layers.3.mlp.up_proj", "h.0.attn.c_attn",
# "encoder.block.1.layer.0.SelfAttention.q"); embeddings and the LM head have none.
INSIDE_BLOCK = re.compile(r"\.\d+\.")


@dataclass
class Target:
    name: str  # module path, e.g. "model.layers.0.self_attn.q_proj"
    module: nn.Module

    @property
    def weight(self) -> nn.Parameter:
        return self.module.weight

    @property
    def transposed(self) -> bool:
        """GPT-2's Conv1D stores W as (in, out); everything else as (out, in)."""
        return isinstance(self.module, Conv1D)

    @property
    def shape(self) -> tuple[int, int]:
        """(out_features, in_features), whatever the storage layout."""
        rows, cols = self.weight.shape
        return (cols, rows) if self.transposed else (rows, cols)


def find_targets(model: nn.Module, target_regex: str | None = None) -> list[Target]:
    # A client's pattern runs on RE2 (linear time): no pattern can hold the worker here.
    pattern = compile_client_regex(target_regex) if target_regex else INSIDE_BLOCK
    targets = [
        Target(name, module)
        for name, module in model.named_modules()
        if isinstance(module, (nn.Linear, Conv1D)) and pattern.search(name)
    ]
    if not targets:
        if target_regex:
            raise SettingsError(f"continual.retention.target_regex {target_regex!r} matches none of the model's "
                                f"linear layers (such as {_example_names(model)}); widen it or leave it out",
                                "continual.retention.target_regex")
        raise SettingsError("the model has no linear layers inside numbered blocks to train; set "
                            "continual.retention.target_regex to the layers to train",
                            "continual.retention.target_regex")
    return targets


def _example_names(model: nn.Module, count: int = 3) -> str:
    names = [name for name, module in model.named_modules() if isinstance(module, (nn.Linear, Conv1D))]
    return ", ".join(repr(n) for n in names[:count]) or "none"
