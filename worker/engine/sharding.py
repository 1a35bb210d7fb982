"""FSDP2 for models whose training state does not fit one device: parameters, gradients and optimizer
state are split by rows across the ranks; the strategy rebuilds its optimizer on the shards (adaptive_svd's
projects each matrix's update on the rows this rank holds)."""

from __future__ import annotations

import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard


def shard(prepared):
    """Shard each transformer block and the rest of the model, and rebuild the optimizer on the shards."""
    model, optimizer = prepared.model, prepared.optimizer
    names = {param: name for name, param in model.named_parameters()}
    mesh = init_device_mesh(next(model.parameters()).device.type, (dist.get_world_size(),))
    blocks = set(getattr(model, "_no_split_modules", None) or ())
    for module in model.modules():
        if type(module).__name__ in blocks:
            fully_shard(module, mesh=mesh)
    fully_shard(model, mesh=mesh)

    sharded = dict(model.named_parameters())  # fully_shard replaced every parameter; names are kept
    shards = {param: sharded[name] for param, name in names.items()}
    groups = [{**group, "params": [shards[p] for p in group["params"]]} for group in optimizer.param_groups]
    return prepared.on_shards(model, groups, shards)
