"""The Trainer's losses by name, and what each expects of its targets.

Every loss is ``fn(output, target) -> Tensor``, a mean over the labels it counts; the Trainer weights
each batch's loss by :func:`label_count` so that an epoch's loss is the mean over all its labels.
:func:`check_target` looks at shapes and dtypes only (no host sync) and says how to fix a target
that does not fit the loss.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from gconv.train._utils import shape

__all__ = [
    "LOSSES",
    "masked_mse",
    "masked_bce",
    "default_metrics",
    "is_class_labels",
    "check_target",
    "label_count",
    "label_error",
]


def masked_mse(output: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over the non-NaN targets (missing labels of multi-task sets)."""
    target = target.reshape(output.shape).to(output.dtype)
    valid = ~torch.isnan(target)
    # where nothing in the batch is labelled, zero (with a graph), not the NaN of an empty mean
    return torch.where(valid, output - target, 0.0).pow(2).sum() / valid.sum().clamp_min(1)


def masked_bce(output: Tensor, target: Tensor) -> Tensor:
    """Binary cross-entropy on logits over the non-NaN targets."""
    target = target.reshape(output.shape).to(output.dtype)
    valid = ~torch.isnan(target)
    losses = F.binary_cross_entropy_with_logits(
        output, torch.where(valid, target, 0.0), reduction="none"
    )
    return torch.where(valid, losses, 0.0).sum() / valid.sum().clamp_min(1)


def _mse(output: Tensor, target: Tensor) -> Tensor:
    return F.mse_loss(output, target.reshape(output.shape).to(output.dtype))


def _l1(output: Tensor, target: Tensor) -> Tensor:
    return F.l1_loss(output, target.reshape(output.shape).to(output.dtype))


LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "cross_entropy": F.cross_entropy,
    "mse": _mse,
    "masked_mse": masked_mse,
    "l1": _l1,
    "bce": masked_bce,
}
_REGRESSION_METRICS = ("rmse", "mae", "r2")
_DEFAULT_METRICS = {
    "cross_entropy": ("accuracy",),
    "mse": _REGRESSION_METRICS,
    "masked_mse": _REGRESSION_METRICS,
    "l1": _REGRESSION_METRICS,
}
_ELEMENTWISE_LOSSES = ("mse", "masked_mse", "l1", "bce")  # one target per output element


def default_metrics(loss: str) -> tuple[str, ...]:
    """The metrics a Trainer with the loss called ``loss`` records when given none."""
    return _DEFAULT_METRICS.get(loss, ())


def is_class_labels(loss: str, target: Tensor) -> bool:
    """Whether ``target`` holds class indices (integer targets of a cross-entropy loss)."""
    return loss == "cross_entropy" and not target.is_floating_point()


def check_target(loss: str, output: Tensor, target: Tensor | None, where: str) -> None:
    """Checks of the target's shape and dtype against the loss (metadata only, no sync).

    Raises:
        ValueError: no target, or one that does not fit the loss, with the fix where one is known
            (``y.long()``, ``y.squeeze(-1)``, ``loss='bce'``).
    """
    if target is None:
        raise ValueError(f"{where} has no target: give (x, y) batches or graphs with .y")
    if loss == "cross_entropy":
        if output.dim() < 2:
            raise ValueError(
                f"cross_entropy needs outputs of shape [B, C] (one logit per class); the model "
                f"gave {shape(output)} on {where}. For one logit per sample use loss='bce'"
            )
        labels = (*output.shape[:1], *output.shape[2:])  # class indices: output without C
        if target.is_floating_point():
            if target.shape == output.shape:
                return  # class probabilities
            if tuple(target.shape) == labels:
                fix = "y.long()"
            elif tuple(target.shape) == (*labels, 1):
                fix = "y.squeeze(-1).long()"
            else:
                fix = f"integer labels of shape {shape(labels)}"
            raise ValueError(
                f"cross_entropy needs integer class labels of shape {shape(labels)} (or class "
                f"probabilities of the output's shape {shape(output)}); {where} has float "
                f"labels of shape {shape(target)}: use {fix}"
            )
        if tuple(target.shape) != labels:
            hint = ""
            if tuple(target.shape) == (*labels, 1):
                hint = ": use y.squeeze(-1) (or y.view(-1)) — one label per sample, not [B, 1]"
            raise ValueError(
                f"cross_entropy needs class labels of shape {shape(labels)} for outputs of "
                f"shape {shape(output)}; {where} has labels of shape {shape(target)}{hint}"
            )
    elif loss in _ELEMENTWISE_LOSSES and target.numel() != output.numel():
        raise ValueError(
            f"loss {loss!r} needs one target per output: {where} has outputs of shape "
            f"{shape(output)} and targets of shape {shape(target)}"
        )


def label_count(loss: str, output: Tensor, target: Tensor) -> Tensor | int:
    """The number of labels the batch's loss averages over: its weight in the epoch's mean
    (a tensor on the device where it depends on the values, so no host sync)."""
    if not target.is_floating_point():
        return target.numel()  # class labels (range-checked) or integer regression targets
    if loss == "cross_entropy":
        return target.numel() // output.shape[1]  # class probabilities: one row per label
    if loss in ("mse", "l1"):
        return target.numel()  # a NaN target makes the loss NaN, which stops the run
    return target.numel() - torch.isnan(target).sum()  # on the device, no sync


def label_error(classes: int, low: int, high: int, where: str) -> ValueError:
    """The error for class labels from ``low`` to ``high`` where ``[0, classes)`` was expected."""
    return ValueError(
        f"labels must be integers in [0, {classes}) for a model with {classes} outputs; "
        f"{where} has labels from {low} to {high}"
    )
