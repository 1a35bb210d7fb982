"""This process's place among the processes that train one job: the examples it trains on, the collectives
every step needs, and the DDP or FSDP wrapping. ``World()`` is the single-process case, where each of these
reduces to nothing, so one training loop serves both.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor
from torch.nn.parallel import DistributedDataParallel

from .data import IGNORE, Example
from .sharding import shard

if TYPE_CHECKING:
    from .config import ShouldCancel

# How long a rank waits in a collective for a peer (calibration and SVD run before the first one).
COLLECTIVE_TIMEOUT = timedelta(minutes=30)


def loss_tokens(example: Example, kind: str) -> int:
    """Tokens the example adds to the mean a Hugging Face model's loss takes. A causal model predicts each
    label from the token before it, so its first position never counts."""
    labels = example.labels if kind == "seq2seq" else example.labels[1:]
    return sum(label != IGNORE for label in labels)


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    sharding: str = "ddp"

    def part(self, examples: list[Example], kind: str) -> tuple[float, list[Example]]:
        """This rank's strided share of a micro-batch, and its weight: its loss tokens over the batch's.

        Weighting each rank's mean loss by its share of the batch's loss tokens makes the averaged gradient
        that of the whole batch's mean loss, as one process computes it, however unevenly examples split.
        """
        mine = examples[self.rank :: self.size]
        total = sum(loss_tokens(e, kind) for e in examples)
        local = sum(loss_tokens(e, kind) for e in mine)
        if local:
            return local / total, mine
        # Nothing to learn from here (say, the last batch has fewer examples than there are ranks): run one
        # example at weight zero so this rank still joins the gradient reduction. With no loss tokens in the
        # whole batch the loss is NaN on every rank, as it is in one process.
        stand_in = next((e for e in examples if loss_tokens(e, kind)), examples[0])
        return (0.0 if total else 1.0), [stand_in]

    def syncing(self, model, last: bool):
        """DDP reduces gradients on a step's last micro-batch only; the others accumulate locally."""
        if isinstance(model, DistributedDataParallel) and not last:
            return model.no_sync()
        return contextlib.nullcontext()

    def total(self, *values: float) -> list[float]:
        """Each value summed over the ranks."""
        if self.size == 1:
            return list(values)
        summed = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(summed)
        return summed.tolist()

    def should_stop(self, should_cancel: ShouldCancel | None) -> bool:
        """Rank 0 asks ``should_cancel``; every rank gets its answer, so all stop after the same step."""
        asked = self.rank == 0 and should_cancel is not None and should_cancel()
        if self.size == 1:
            return asked
        flag = torch.tensor([int(bool(asked))], device=self.device)
        dist.broadcast(flag, src=0)
        return bool(flag.item())

    def distribute(self, prepared):
        """Wrap a prepared strategy for training across the ranks, with every rank's kept bases rank 0's."""
        if self.size == 1:
            return prepared
        prepared.share_from_lead()
        if self.sharding == "fsdp":
            return shard(prepared)
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # Unused parameters are allowed: a mixture-of-experts layer may route a batch past some experts.
        model = DistributedDataParallel(prepared.model, device_ids=device_ids, find_unused_parameters=True)
        return replace(prepared, model=model)

    def unwrap(self, model):
        return model.module if isinstance(model, DistributedDataParallel) else model

    @torch.no_grad()
    def gather_parameters(self, model) -> dict[str, torch.Tensor]:
        """Every parameter, whole, on rank 0's host (empty on the others); FSDP gathers one at a time."""
        gathered = {}
        for name, param in model.named_parameters():
            whole = param.full_tensor() if isinstance(param, DTensor) else param
            if self.rank == 0:
                gathered[name] = whole.detach().to("cpu", copy=True).contiguous()
        return gathered


@contextlib.contextmanager
def joined(rank: int, size: int, init_method: str, device: torch.device, sharding: str):
    """Join the job's process group (NCCL on CUDA, else gloo) as ``rank``; yields this rank's World."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        "nccl" if device.type == "cuda" else "gloo",
        init_method=init_method,
        rank=rank,
        world_size=size,
        timeout=COLLECTIVE_TIMEOUT,
    )
    yield World(rank, size, device, sharding)
    # Reached only on success: a failed rank exits without a teardown that could wait on its stuck peers.
    dist.destroy_process_group()
