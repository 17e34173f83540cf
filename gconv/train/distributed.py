"""Multi-process data parallelism under ``torchrun``.

``torchrun --nproc_per_node=N script.py`` starts ``N`` processes with ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE`` in their environment. :func:`setup` reads them, joins the process group (``nccl`` on
CUDA, ``gloo`` on CPU) and picks this process's device; the Trainer then wraps the model in
``DistributedDataParallel`` and shards the training data. Outside ``torchrun`` nothing changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

__all__ = [
    "DistInfo",
    "setup",
    "is_launched",
    "shard_loader",
    "all_gather_objects",
    "all_reduce_sum",
]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_launched() -> bool:
    """True when this process was started by ``torchrun`` with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "LOCAL_RANK" in os.environ


def setup(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by ``torchrun``; return the info and this rank's device."""
    if not is_launched():
        return DistInfo(), device
    local_rank = int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    info = DistInfo(dist.get_rank(), local_rank, dist.get_world_size())
    return info, device


def shard_loader(loader: Any, info: DistInfo, seed: int, pin_memory: bool) -> Any:
    """This rank's part of ``loader``.

    A :class:`gconv.data.TensorLoader` is sharded in place; a ``DataLoader`` (PyG's included) is
    rebuilt over the same data set with a ``DistributedSampler``; other iterables are refused,
    since silently training every rank on all the data would be wrong.
    """
    if hasattr(loader, "shard"):
        return loader.shard(info.rank, info.world_size)
    if isinstance(loader, DataLoader):
        if isinstance(loader.sampler, DistributedSampler):
            return loader
        sampler = DistributedSampler(
            loader.dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=seed
        )
        workers = {}
        if loader.num_workers > 0:  # these options are only valid with worker processes
            workers = dict(
                prefetch_factor=loader.prefetch_factor,
                persistent_workers=loader.persistent_workers,
            )
        return DataLoader(
            loader.dataset,
            batch_size=loader.batch_size,
            sampler=sampler,
            num_workers=loader.num_workers,
            collate_fn=loader.collate_fn,
            pin_memory=pin_memory or loader.pin_memory,
            drop_last=loader.drop_last,
            timeout=loader.timeout,
            worker_init_fn=loader.worker_init_fn,
            multiprocessing_context=loader.multiprocessing_context,
            generator=loader.generator,
            **workers,
        )
    raise TypeError(
        f"under torchrun the training data must be a gconv TensorLoader or a torch DataLoader "
        f"(so that it can be sharded), got {type(loader).__name__}"
    )


def all_reduce_sum(value: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def all_gather_objects(obj: Any) -> list[Any]:
    if dist.is_available() and dist.is_initialized():
        out: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
    return [obj]
