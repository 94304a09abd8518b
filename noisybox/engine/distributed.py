"""``torch.distributed`` set-up for ``torchrun``: NCCL on CUDA, gloo on CPU."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "all_gather_objects",
    "all_reduce_sum",
    "barrier",
    "cleanup_distributed",
    "init_distributed",
    "select_device",
]


@dataclasses.dataclass(frozen=True)
class DistInfo:
    """Where this process sits in a (possibly single-process) run.

    Attributes:
        rank: global rank (0 when not distributed).
        world_size: number of processes.
        local_rank: rank on this node (the CUDA device index).
        enabled: a process group is initialised.
        owns_group: this call created the group (and must destroy it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    enabled: bool = False
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def select_device(device: str = "auto", *, local_rank: int = 0) -> torch.device:
    """``"auto"``: CUDA (``cuda:local_rank``), then Apple MPS, then CPU; else as given.

    Raises:
        ValueError: an unknown device or one that is not available.

    >>> select_device("cpu")
    device(type='cpu')
    """
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise ValueError(
            f"Expected a device like auto, cpu, cuda, cuda:1 or mps but got {device!r}"
        ) from None
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"Expected a CUDA device to be available for device={device!r} but got none"
            )
        if chosen.index is None:
            chosen = torch.device("cuda", local_rank % torch.cuda.device_count())
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"Expected Apple MPS to be available for device={device!r} but got none")
    return chosen


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group ``torchrun`` describes in the environment, if any.

    Reads ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; with ``WORLD_SIZE`` unset or ``1``
    nothing happens. The backend is NCCL for CUDA devices and gloo otherwise.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world_size <= 1:
        return DistInfo()
    if dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, True, False)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistInfo(rank, world_size, local_rank, True, True)


def cleanup_distributed(info: DistInfo) -> None:
    """Destroy the process group if :func:`init_distributed` created it."""
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place (a no-op for one process)."""
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_objects(value: Any, info: DistInfo) -> list[Any]:
    """``[value of rank 0, value of rank 1, ...]`` (``[value]`` for one process)."""
    if not info.enabled:
        return [value]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, value)
    return out
