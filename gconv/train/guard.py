"""The training loop's guard: sums kept on the device, checked with one host sync every
``log_every`` steps, and a roll-back to the weights last checked finite.

The loop never syncs the host with the device per step. Each batch's loss, label count and
class-label range go into a :class:`Tally`; :meth:`Guard.check` folds them into the epoch's sums
and looks for a non-finite loss or a class label out of range among the batches since the last
check. When it finds one, the model's weights are put back to those :meth:`Guard.keep` copied
aside at the last check (at most ``log_every`` steps earlier) and the error says so.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from gconv.train.losses import label_error

__all__ = ["Tally", "Guard"]


class Tally:
    """Per-batch losses, label counts and class-label ranges, kept on the device.

    :meth:`fold` adds the batches seen since the last fold to the running sums and looks among
    them for a non-finite loss or a class label out of range, with a single device-to-host copy;
    the training loop folds every ``log_every`` steps, never per step.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.dtype = torch.float32 if device.type == "mps" else torch.float64
        self.loss_sum = torch.zeros((), dtype=self.dtype, device=device)
        self.count = torch.zeros((), dtype=self.dtype, device=device)
        self.folded = 0  # batches already in the sums
        self.mean = math.nan
        self._losses: list[Tensor] = []
        self._counts: list[Tensor | int] = []
        self._ranges: list[tuple[Tensor, Tensor]] = []

    def add(self, loss: Tensor, count: Tensor | int, label_range: Any = None) -> None:
        self._losses.append(loss)
        self._counts.append(count)
        if label_range is not None:
            self._ranges.append(label_range)

    def fold(
        self, classes: int | None = None
    ) -> tuple[tuple[int, float] | None, tuple[int, int, int] | None]:
        """Returns ``(batch, loss)`` of the first non-finite loss and ``(batch, low, high)`` of
        the first batch with class labels outside ``[0, classes)``, or ``None`` for each."""
        if not self._losses:
            return None, None
        losses = torch.stack(self._losses).to(self.dtype)
        if all(isinstance(c, int) for c in self._counts):
            counts = torch.tensor(self._counts, dtype=self.dtype).to(self.device, non_blocking=True)
        else:
            counts = torch.stack(
                [torch.as_tensor(c, device=self.device).to(self.dtype) for c in self._counts]
            )
        finite = torch.isfinite(losses)
        self.loss_sum += (losses * counts).sum()
        self.count += counts.sum()
        flags = [(~finite).any().to(self.dtype), self.loss_sum, self.count]
        bad_labels = None
        if self._ranges:
            low = torch.stack([r[0] for r in self._ranges])
            high = torch.stack([r[1] for r in self._ranges])
            bad_labels = (low < 0) | (high >= classes)
            flags.append(bad_labels.any().to(self.dtype))
        values = torch.stack(flags).tolist()  # the one host sync
        self.mean = values[1] / values[2] if values[2] else math.nan
        bad_loss = label = None
        if values[0]:
            index = int((~finite).nonzero()[0])
            bad_loss = (self.folded + index, float(losses[index]))
        if bad_labels is not None and values[3]:
            index = int(bad_labels.nonzero()[0])
            label = (self.folded + index, int(low[index]), int(high[index]))
        self.folded += len(self._losses)
        self._losses, self._counts, self._ranges = [], [], []
        return bad_loss, label


class Guard:
    """Keeps a copy of ``model``'s weights from the last check, and rolls back to it when a check
    finds a non-finite loss or a bad label (the optimizer state is not rolled back)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.state: dict[str, Tensor] | None = None  # weights last checked finite
        self.where = ""

    def keep(self, where: str) -> None:
        """Copy the weights (just checked finite) aside, to restore them if training diverges;
        ``where`` says when, for the message (``"after batch 4 of epoch 2"``)."""
        state = self.model.state_dict()
        with torch.no_grad():
            if self.state is None or self.state.keys() != state.keys():
                self.state = {k: v.detach().clone() for k, v in state.items()}
            else:
                for key, value in state.items():
                    self.state[key].copy_(value)
        self.where = where

    def release(self) -> None:
        """Drop the copy (at the end of :meth:`Trainer.fit`)."""
        self.state = None

    def check(self, tally: Tally, classes: int | None, epoch: int, saved: str = "") -> None:
        """Fold ``tally``; for a non-finite loss or a bad label among the batches since the last
        check, roll back and raise.

        Args:
            tally (Tally): this epoch's tally.
            classes (int, optional): the number of classes labels are checked against.
            epoch (int): the epoch, counted from 0.
            saved (str): what the last checkpoint holds, appended to the message
                (``"; runs/last.pt holds the end of epoch 1"``).

        Raises:
            ValueError: class labels outside ``[0, classes)``, naming the epoch and the batch.
            FloatingPointError: a non-finite loss, naming the epoch and the batch.
        """
        bad_loss, bad_label = tally.fold(classes)
        if bad_label is not None and (bad_loss is None or bad_label[0] <= bad_loss[0]):
            batch, low, high = bad_label
            restored = self.roll_back(saved)
            error = label_error(classes, low, high, f"epoch {epoch + 1}, batch {batch}")
            raise ValueError(f"{error}. {restored}")
        if bad_loss is not None:
            batch, value = bad_loss
            restored = self.roll_back(saved)
            raise FloatingPointError(
                f"loss became {value} at epoch {epoch + 1}, batch {batch}: lower the learning "
                f"rate, set grad_clip, or check the inputs and targets for NaN/inf. {restored}"
            )

    def roll_back(self, saved: str = "") -> str:
        """Put the weights last kept back into the model; returns the sentence that says so."""
        if self.state is None:
            return f"The model's weights were not restored{saved}."
        self.model.load_state_dict(self.state)
        return (
            f"The model's weights were restored to those {self.where}, the last checked "
            f"finite (the optimizer state was not){saved}."
        )
