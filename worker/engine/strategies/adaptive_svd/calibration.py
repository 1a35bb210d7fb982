"""Running calibration examples through the model while watching each target's inputs and outputs.

Examples go in padded batches, and every hook keeps only the positions of real tokens (the attention
mask; an encoder-decoder's decoder positions that carry labels), so padding never enters a statistic.
Targets that read the very same tensor (q/k/v; gate/up) are told which of them read it first, so a
statistic of that input is gathered once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from ...data import IGNORE, Example, collate
from ...targets import Target

CALIBRATION_BATCH_TOKENS = 4096  # padded tokens one calibration forward pass reads at most

# (source, target, x, y, reader): float32 (tokens, features) views of the target's input and output on a
# batch of ``sources[source]``; ``reader`` is the first target of this pass that read the same tensor.
Observer = Callable[[int, Target, torch.Tensor, torch.Tensor, Target], None]


def calibration_batches(examples: list[Example], count: int, pad_id: int, device, generator) -> list[dict]:
    """``count`` seeded examples in padded batches of at most ``CALIBRATION_BATCH_TOKENS`` tokens.

    The draw is the one calibration has always made, so a seed picks the same examples; they are batched
    by length so that a batch pads little.
    """
    order = torch.randperm(len(examples), generator=generator)[:count].tolist()
    order.sort(key=lambda i: _width(examples[i]))
    groups: list[list[Example]] = []
    for i in order:
        # Sorted by width, the example joining a group is its widest.
        if groups and (len(groups[-1]) + 1) * _width(examples[i]) <= CALIBRATION_BATCH_TOKENS:
            groups[-1].append(examples[i])
        else:
            groups.append([examples[i]])
    return [{k: v.to(device) for k, v in collate(group, pad_id).items()} for group in groups]


def _width(example: Example) -> int:
    return max(len(example.input_ids), len(example.labels))


class _Stop(Exception):
    """Ends a forward pass once the blocks it was run for have run."""


def _stop(*_args) -> None:
    raise _Stop


def blocks_of(model: nn.Module) -> list[nn.Module]:
    """The model's repeated blocks (decoder layers; an encoder's, then a decoder's) in the order a forward
    pass runs them: Hugging Face names their classes in ``_no_split_modules``."""
    kinds = set(getattr(model, "_no_split_modules", None) or ())
    found = [m for m in model.modules() if type(m).__name__ in kinds]
    inner = {sub for block in found for sub in block.modules() if sub is not block}
    return [block for block in found if block not in inner]


def block_indices(targets: list[Target], blocks: list[nn.Module]) -> dict[str, int]:
    """Each target's block (its index in ``blocks``), -1 for a target outside every block."""
    index = {module: i for i, block in enumerate(blocks) for module in block.modules()}
    return {t.name: index.get(t.module, -1) for t in targets}


class _Watch:
    """Hooks on every target that hand ``observer`` its input and output at real tokens only."""

    def __init__(self, model: nn.Module, targets: list[Target], observer: Observer, blocks: list[nn.Module]):
        self.model, self.observer = model, observer
        self.seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
        encoder = model.get_encoder() if self.seq2seq else None
        self.encoder_modules = set(encoder.modules()) if encoder is not None else set()
        self.block_of = block_indices(targets, blocks)
        self.source, self.masks, self.encoder_output = 0, (torch.empty(0), None), None
        self.read: list[tuple[torch.Tensor, Target, torch.Tensor]] = []  # this block's distinct inputs
        self.block: int | None = None
        self.handles = [t.module.register_forward_hook(self._hook(t)) for t in targets]
        if encoder is not None:
            self.handles.append(encoder.register_forward_hook(self._encoded))

    def _encoded(self, _module, _args, output) -> None:
        self.encoder_output = output[0]  # what a decoder's cross-attention reads

    def _hook(self, target: Target):
        def hook(_module, args, output):
            raw = args[0]
            if self.block_of[target.name] != self.block:
                self.block, self.read = self.block_of[target.name], []  # inputs are shared within a block only
            mask = self._mask_for(target, raw)
            reader, x = next(((r, x) for seen, r, x in self.read if seen is raw), (target, None))
            if x is None:
                x = raw.detach()[mask].float()
                self.read.append((raw, target, x))  # holding raw keeps its identity for the block's pass
            y = output.detach()[mask].float()
            self.observer(self.source, target, x, y, reader)

        return hook

    def _mask_for(self, target: Target, raw: torch.Tensor) -> torch.Tensor:
        encoder_side = target.module in self.encoder_modules or raw is self.encoder_output
        mask = self.masks[0] if encoder_side or self.masks[1] is None else self.masks[1]
        if raw.shape[:-1] != mask.shape:
            raise RuntimeError(f"calibration cannot tell the padded positions of {target.name}'s input: its shape "
                               f"{tuple(raw.shape)} does not start with the batch's {tuple(mask.shape)}")
        return mask

    def run(self, source: int, batch: dict) -> None:
        ids = batch["input_ids"]
        attention = batch.get("attention_mask", torch.ones_like(ids)).bool()
        self.source = source
        self.masks = (attention, batch["labels"] != IGNORE) if self.seq2seq else (attention, None)
        # A causal model needs no labels: without them it computes no loss over the vocabulary.
        inputs = {k: v for k, v in batch.items() if k != "labels" or self.seq2seq}
        try:
            self.model(**inputs, use_cache=False)
        except _Stop:
            pass
        finally:
            self.read, self.block, self.encoder_output = [], None, None

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


@contextmanager
def _watching(model, targets, observer, blocks):
    watch = _Watch(model, targets, observer, blocks)
    was_training = model.training
    model.eval()
    try:
        yield watch
    finally:
        watch.close()
        model.train(was_training)


def _outside_blocks(targets: list[Target], blocks: list[nn.Module]) -> list[Target]:
    inside = {m for block in blocks for m in block.modules()}
    return [t for t in targets if t.module not in inside]


@torch.no_grad()
def observe(model, targets: list[Target], sources: Sequence[list[dict]], observer: Observer) -> None:
    """Every batch of every source through the model once, watching every target at once: for statistics
    that are small whatever the layer count (importance's sums)."""
    blocks = blocks_of(model)
    with _watching(model, targets, observer, blocks) as watch:
        stop = None
        if blocks and not _outside_blocks(targets, blocks):  # nothing to watch after the last block
            stop = blocks[-1].register_forward_hook(_stop)
        try:
            for source, batches in enumerate(sources):
                for batch in batches:
                    watch.run(source, batch)
        finally:
            if stop is not None:
                stop.remove()


@torch.no_grad()
def observe_by_block(model, targets: list[Target], sources: Sequence[list[dict]],
                     observer: Observer) -> Iterator[list[Target]]:
    """As ``observe``, one block at a time: yields each block's targets once every batch has passed through
    it, before the next block runs, so a caller can finish and drop one block's statistics at a time.

    Each block runs on what the block before it returned in the previous pass (kept per batch), and every
    other block returns that too without running: the passes together cost one forward pass of the blocks,
    and only the model's cheap parts outside them (embeddings, masks) run once a block. Targets outside
    every block come last, in a pass that runs past the blocks.
    """
    blocks = blocks_of(model)
    stack_of = _stacks(model, blocks)
    batches = [(source, batch) for source, group in enumerate(sources) for batch in group]
    latest: dict[str, list] = {}  # per stack of blocks: what its latest block that ran returned, per batch
    position = [0]  # the batch being run

    def skipped(stack: str):
        return lambda *_args, **_kwargs: latest[stack][position[0]]

    with _watching(model, targets, observer, blocks) as watch:
        for block in [*blocks, None]:
            members = ([t for t in targets if watch.block_of[t.name] == blocks.index(block)] if block is not None
                       else _outside_blocks(targets, blocks))
            if block is None and not members:
                break
            for other in blocks:
                if other is not block and stack_of[other] in latest:
                    other.forward = skipped(stack_of[other])
            stop = None if block is None else block.register_forward_hook(_keeper(latest, stack_of[block],
                                                                                  position, len(batches)))
            try:
                for position[0], (source, batch) in enumerate(batches):
                    watch.run(source, batch)
            finally:
                if stop is not None:
                    stop.remove()
                for other in blocks:
                    other.__dict__.pop("forward", None)
            yield members


def _keeper(latest: dict[str, list], stack: str, position: list[int], count: int):
    """A hook that keeps a block's output for the next block's pass, then ends the forward pass."""
    outputs = latest.setdefault(stack, [None] * count)

    def hook(_module, _args, output):
        outputs[position[0]] = output
        raise _Stop

    return hook


def _stacks(model: nn.Module, blocks: list[nn.Module]) -> dict[nn.Module, str]:
    """Each block's container (a model's layer list; an encoder-decoder has two): a block passes its output
    to the next block of its own stack."""
    names = {module: name for name, module in model.named_modules()}
    return {block: names[block].rpartition(".")[0] for block in blocks}
