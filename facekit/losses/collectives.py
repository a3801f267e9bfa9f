"""The few collectives the losses use, each a no-op in one process: the centre tables and Partial FC call them
alike whether or not they run under ``torchrun``."""

from __future__ import annotations

import torch
import torch.distributed as dist


def distributed() -> bool:
    """A process group of more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` over all ranks (``x`` itself in one process). Equal first dimensions on every rank."""
    if not distributed():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def all_reduce(t: torch.Tensor, op: dist.ReduceOp | None = None) -> None:
    """In place, over the ranks (SUM unless ``op``; nothing in one process)."""
    if distributed():
        dist.all_reduce(t, op=op or dist.ReduceOp.SUM)
