"""Data-parallel training under ``torchrun``: process group, ranks, global batches.

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; without them
everything here is a no-op and training is a single process. Backend: ``nccl`` when
training on CUDA, ``gloo`` on CPU.
"""

from __future__ import annotations

import atexit
import os
from typing import Any

import torch
import torch.distributed as dist

from acula_pipeline.runtime import resolve_device


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_distributed() -> bool:
    """A process group with more than one rank is up."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """Rank 0, or the only process: the one that writes files."""
    return rank() == 0


def init_distributed(device: str = "auto") -> str:
    """Join the ``torchrun`` process group (once) and return this rank's device.

    ``auto``/``cuda`` become ``cuda:<LOCAL_RANK>`` under ``torchrun``.
    """
    resolved = resolve_device(device)
    if env_world_size() <= 1 or not dist.is_available():
        return resolved
    local = int(os.environ.get("LOCAL_RANK", "0"))
    on_cuda = resolved.startswith("cuda")
    if not dist.is_initialized():
        if on_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if on_cuda else "gloo")
        atexit.register(_shutdown)
    backend = dist.get_backend()
    if backend == "nccl" and not on_cuda:
        raise RuntimeError(
            f"the process group uses nccl but training was asked to run on "
            f"{resolved!r}; nccl needs CUDA tensors (use device: auto or cuda)"
        )
    return f"cuda:{local}" if resolved == "cuda" else resolved


def _shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


class _GatherWithGrad(torch.autograd.Function):
    """All-gather whose backward sums each row's gradient over ranks (every rank
    computes the same global loss) and hands each rank the rows it made."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.rank, ctx.n = dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def gather_global(x: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's batch (equal sizes: ``shard`` pads), with gradients.

    Each rank then computes the loss of the whole global batch; each row's gradient
    is summed over ranks and returned to the rank that made it, so once DDP has
    averaged, the update equals a single process on the combined batch.
    """
    if not is_distributed():
        return x
    out: torch.Tensor = _GatherWithGrad.apply(x)
    return out


def mean_over_ranks(values: dict[str, float], device: Any) -> dict[str, float]:
    """Average logged scalars over ranks (one all-reduce)."""
    if not is_distributed() or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist(), strict=True))


def shard(order: torch.Tensor, rank_: int, world: int) -> torch.Tensor:
    """This rank's share of an epoch's order, padded by repetition to equal length.

    Rank ``r`` takes positions ``r, r + world, …`` (like ``DistributedSampler``), so
    the ``k``-th batch of every rank together is the ``k``-th global batch.
    """
    if world == 1:
        return order
    pad = (-len(order)) % world
    if pad:
        order = torch.cat([order, order[:pad]])
    return order[rank_::world]
