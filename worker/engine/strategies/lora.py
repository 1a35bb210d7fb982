"""``lora``: PEFT LoRA adapters on the target layers, merged into the weights when training ends."""

from __future__ import annotations

import peft

from app.jobs import strategies as specs

from ..targets import find_targets
from .base import Prepared, plain_adamw, trainable_parameters
from .registry import register


class Lora:
    spec = specs.get("lora")

    def prepare(self, model, config, context) -> Prepared:  # noqa: ARG002 - Strategy's signature
        settings = config.lora
        targets = find_targets(model, config.retention.target_regex)
        wrapped = peft.get_peft_model(model, peft.LoraConfig(
            r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
            target_modules=[t.name for t in targets]))
        summary = {
            "strategy": "lora",
            "matrices": {},
            "summary": {"trainable_parameters": trainable_parameters(wrapped), "r": settings.r,
                        "alpha": settings.alpha, "dropout": settings.dropout},
        }
        return Prepared(wrapped, plain_adamw(wrapped, config), lambda m: m.merge_and_unload(), summary)


register(Lora())
