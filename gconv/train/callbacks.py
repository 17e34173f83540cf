"""A per-step hook: your code after every optimizer step of :meth:`Trainer.fit`.

``Trainer(..., callbacks=[...])`` takes callables ``fn(trainer, info)``, or objects with an
``on_train_batch_end(trainer, info)`` method (Lightning's name for the same moment). After each
optimizer step (and the scheduler's, when it steps per batch) the Trainer calls each one, in order,
with itself and a :class:`StepInfo`. Example: the loss of every step, without a host sync per
step::

    losses = []
    trainer = Trainer(model, callbacks=[lambda trainer, info: losses.append(info.loss)])
    trainer.fit(loader, epochs=2)
    losses = torch.stack(losses).tolist()  # one device-to-host copy

The tensors in :class:`StepInfo` stay on the device; reading one on the host (``.item()``,
``float()``) waits for the device, every step. A loss is checked for being finite only every
``log_every`` steps, so a callback may see a non-finite one before the Trainer raises. Under
``torchrun`` every process calls its callbacks with its own batches. Callbacks are not part of a
checkpoint: give a resumed Trainer its callbacks again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from torch import Tensor

if TYPE_CHECKING:
    from gconv.train.trainer import Trainer

__all__ = ["StepInfo", "Callback", "as_callbacks"]


class StepInfo(NamedTuple):
    """What one training step did, as a callback receives it."""

    epoch: int  #: the epoch, counted from 1 (as in the history and the error messages)
    batch: int  #: the batch within the epoch, counted from 0
    step: int  #: optimizer steps taken so far, over all epochs (``trainer.step``)
    loss: Tensor  #: the batch's loss: a detached 0-dim tensor on the device
    output: Tensor  #: the model's output (float32, detached)
    target: Tensor  #: the batch's target


#: ``fn(trainer, info)``; an object with an ``on_train_batch_end(trainer, info)`` method works too.
Callback = Callable[["Trainer", StepInfo], Any]


def as_callbacks(callbacks: Callback | Sequence[Callback] | None) -> list[Callable[..., Any]]:
    """The functions to call after each step: ``callbacks`` (one or a sequence) checked.

    Raises:
        TypeError: an item that is neither callable nor has ``on_train_batch_end``.
    """
    if callbacks is None:
        return []
    if callable(callbacks) or hasattr(callbacks, "on_train_batch_end"):
        callbacks = [callbacks]
    functions = []
    for callback in callbacks:
        hook = getattr(callback, "on_train_batch_end", callback)
        if not callable(hook):
            raise TypeError(
                "Trainer expected callbacks to be callables fn(trainer, info) or objects with an "
                f"on_train_batch_end(trainer, info) method, got {type(callback).__name__}"
            )
        functions.append(hook)
    return functions
