"""Device-resident batching for tensor data sets.

A small image data set (MNIST, FashionMNIST, the embedded MNIST-5k) fits on any device many times
over. Keeping it there as two tensors and slicing shuffled batches by index removes the per-sample
Python work of ``torch.utils.data.DataLoader`` (``__getitem__``, collation, host-to-device copies),
which dominates the epoch time of small CNNs on CPU and GPU alike.

Shuffling is a pure function of ``(seed, epoch)``, like ``DistributedSampler``: an interrupted run
that is resumed at epoch ``k`` sees exactly the batches it would have seen (the Trainer saves the
seed with :meth:`TensorLoader.state_dict`), and every process of a multi-process run agrees on the
permutation without communicating.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

__all__ = ["TensorLoader"]

Augment = Callable[..., Tensor]


class TensorLoader:
    r"""Yield shuffled ``(x, y)`` mini-batches from tensors kept on one device.

    Args:
        x (Tensor): inputs, first dimension indexes samples (e.g. images ``[N, C, H, W]``).
        y (Tensor, optional): targets with the same first dimension. (default: :obj:`None`,
            the loader then yields ``(x,)`` tuples, e.g. for :meth:`Trainer.predict`)
        batch_size (int): samples per batch (per process under ``torchrun``). (default: :obj:`100`)
        shuffle (bool): draw a new permutation every epoch. (default: :obj:`True`)
        device (torch.device or str, optional): where the tensors live; moved once, here.
            (default: :obj:`None`, keep them where they are)
        augment (callable, optional): batch augmentation ``augment(x, generator=g) -> x`` applied
            on the device to training batches, e.g. :class:`gconv.data.augment.RandomShift`.
            (default: :obj:`None`)
        drop_last (bool): drop the last incomplete batch. (default: :obj:`False`)
        seed (int, optional): seed of the shuffling and augmentation streams. (default: :obj:`None`,
            drawn once from ``torch``'s global generator, so ``torch.manual_seed`` governs it;
            ``Trainer(seed=s)`` replaces a drawn seed by ``s`` when a new run starts, see
            :meth:`set_default_seed`)

    Shapes:
        - **x:** :math:`(N, *)`, **y:** :math:`(N, *)`
        - **yields:** ``(x[idx], y[idx])`` with :math:`|idx| \le` ``batch_size``
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor | None = None,
        batch_size: int = 100,
        shuffle: bool = True,
        device: torch.device | str | None = None,
        augment: Augment | None = None,
        drop_last: bool = False,
        seed: int | None = None,
    ) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"TensorLoader expected x as a Tensor, got {type(x).__name__}")
        if y is not None:
            if not isinstance(y, Tensor):
                raise TypeError(f"TensorLoader expected y as a Tensor, got {type(y).__name__}")
            if y.shape[0] != x.shape[0]:
                raise ValueError(
                    f"TensorLoader expected x and y with the same number of samples, got "
                    f"x.shape[0]={x.shape[0]} and y.shape[0]={y.shape[0]}"
                )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if x.shape[0] == 0:
            raise ValueError("TensorLoader got an empty data set (x.shape[0] == 0)")
        self.device = torch.device(device) if device is not None else x.device
        self.x = x.to(self.device)
        self.y = y.to(self.device) if y is not None else None
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.drop_last = drop_last
        self.seed = int(torch.randint(0, 2**31 - 1, ()).item()) if seed is None else int(seed)
        self.seed_given = seed is not None
        self.epoch = 0
        self.rank, self.world_size = 0, 1

    # The Trainer calls these two, as it does for a ``DistributedSampler``.
    def set_epoch(self, epoch: int) -> None:
        """Select the permutation (and augmentation stream) of ``epoch``."""
        self.epoch = epoch

    def set_default_seed(self, seed: int) -> bool:
        """Use ``seed`` unless one was given (or loaded); returns whether it was used.

        ``Trainer(seed=s)`` calls this on its train loader when a new run starts, so that its seed
        also fixes the shuffling of a loader built without one.
        """
        if self.seed_given:
            return False
        self.seed = int(seed)
        return True

    def state_dict(self) -> dict[str, Any]:
        """The seed and epoch that decide the next batches (saved in the Trainer's ``last.pt``)."""
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the shuffling of a saved loader; warns when its seed replaces one given here."""
        seed = int(state["seed"])
        if self.seed_given and seed != self.seed:
            warnings.warn(
                f"TensorLoader: the saved seed {seed} replaces seed={self.seed} given to this "
                "loader, so that the resumed run sees the batches the interrupted one would have",
                stacklevel=2,
            )
        self.seed, self.epoch, self.seed_given = seed, int(state["epoch"]), True

    def shard(self, rank: int, world_size: int) -> TensorLoader:
        """Make this loader yield only process ``rank``'s part of every global batch.

        Global batch ``i`` is the ``i``-th block of ``batch_size * world_size`` indices of the
        epoch's permutation; process ``r`` takes the ``r``-th slice of it. So ``world_size``
        processes with ``batch_size=B`` step through the same samples, in the same groups, as one
        process with ``batch_size=world_size * B``, and every process gets the same number of batches
        (the permutation is padded by wrapping around, as ``DistributedSampler`` does).
        """
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.rank, self.world_size = rank, world_size
        return self

    def _permutation(self) -> Tensor:
        n = self.x.shape[0]
        if not self.shuffle:
            return torch.arange(n, device=self.device)
        generator = torch.Generator(device="cpu").manual_seed(self.seed + self.epoch)
        # Drawn on the CPU so that the order is the same on every device type.
        return torch.randperm(n, generator=generator).to(self.device)

    def _num_samples_padded(self) -> int:
        n, w = self.x.shape[0], self.world_size
        return -(-n // w) * w

    def __len__(self) -> int:
        global_batch = self.batch_size * self.world_size
        total = self._num_samples_padded()
        return total // global_batch if self.drop_last else -(-total // global_batch)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        order = self._permutation()
        padded = self._num_samples_padded()
        if padded > order.numel():  # wrap around, more than once for fewer samples than processes
            order = order.repeat(-(-padded // order.numel()))[:padded]
        generator = None
        if self.augment is not None:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(self.seed + 7919 * (self.epoch + 1) + self.rank)
        global_batch = self.batch_size * self.world_size
        for i in range(len(self)):
            chunk = order[i * global_batch : (i + 1) * global_batch]
            size = chunk.numel() // self.world_size
            idx = chunk[self.rank * size : (self.rank + 1) * size]
            xb = self.x[idx]
            if self.augment is not None:
                xb = self.augment(xb, generator=generator)
            yield (xb,) if self.y is None else (xb, self.y[idx])

    def __repr__(self) -> str:
        shard = f", rank={self.rank}/{self.world_size}" if self.world_size > 1 else ""
        return (
            f"{type(self).__name__}(samples={self.x.shape[0]}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, device={self.device}{shard})"
        )
