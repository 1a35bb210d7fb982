"""``full``: every parameter trains, with plain AdamW (the sequential fine-tuning baseline)."""

from __future__ import annotations

from app.jobs import strategies as specs

from .base import Prepared, plain_adamw, trainable_parameters, unchanged
from .registry import register


def prepare_full(model, config) -> Prepared:
    model.requires_grad_(True)
    summary = {"strategy": "full", "matrices": {}, "summary": {"trainable_parameters": trainable_parameters(model)}}
    return Prepared(model, plain_adamw(model, config), unchanged, summary)


class Full:
    spec = specs.get("full")

    def prepare(self, model, config, context) -> Prepared:  # noqa: ARG002 - Strategy's signature
        return prepare_full(model, config)


register(Full())
