"""Metrics over a whole epoch of model outputs, computed with scikit-learn.

Each metric is ``fn(output, target) -> float`` on CPU tensors holding the epoch's concatenated
model outputs (logits for classification) and targets. Regression metrics ignore NaN targets (the
missing labels of multi-task molecule sets) and average over tasks. ``higher_is_better`` tells the
Trainer which way to monitor a metric.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from sklearn import metrics as skm
from torch import Tensor

__all__ = ["METRICS", "get_metric", "higher_is_better", "accuracy", "rmse", "mae", "r2", "roc_auc"]


def _class_predictions(output: Tensor) -> np.ndarray:
    # One output column is a binary logit; several are class logits.
    if output.ndim == 1 or output.shape[-1] == 1:
        return (output.reshape(-1) > 0).long().numpy()
    return output.argmax(dim=-1).numpy()


def accuracy(output: Tensor, target: Tensor) -> float:
    """Fraction of correct class predictions (argmax of logits, or logit > 0 for one column).

    Targets are class labels, or class probabilities of the output's shape (their argmax is the
    label).
    """
    if target.is_floating_point() and target.shape == output.shape and output.shape[-1] > 1:
        target = target.argmax(dim=-1)
    return float(skm.accuracy_score(target.reshape(-1).long().numpy(), _class_predictions(output)))


def _regression_columns(output: Tensor, target: Tensor) -> list[tuple[np.ndarray, np.ndarray]]:
    out = output.detach().double().reshape(output.shape[0], -1)
    tgt = target.detach().double().reshape(target.shape[0], -1)
    if out.shape != tgt.shape:
        raise ValueError(
            f"regression metric expected output and target of the same shape, got "
            f"{tuple(output.shape)} and {tuple(target.shape)}"
        )
    columns = []
    for task in range(tgt.shape[1]):
        valid = ~torch.isnan(tgt[:, task])
        if valid.any():
            columns.append((tgt[valid, task].numpy(), out[valid, task].numpy()))
    if not columns:
        raise ValueError("regression metric got no non-NaN target")
    return columns


def rmse(output: Tensor, target: Tensor) -> float:
    """Root mean squared error, NaN targets ignored, averaged over tasks."""
    cols = _regression_columns(output, target)
    return float(np.mean([np.sqrt(skm.mean_squared_error(t, p)) for t, p in cols]))


def mae(output: Tensor, target: Tensor) -> float:
    """Mean absolute error, NaN targets ignored, averaged over tasks."""
    cols = _regression_columns(output, target)
    return float(np.mean([skm.mean_absolute_error(t, p) for t, p in cols]))


def r2(output: Tensor, target: Tensor) -> float:
    """Coefficient of determination R², NaN targets ignored, averaged over the tasks whose labels
    vary; NaN when none does.

    R² is undefined for a task with fewer than two labels or constant labels: scikit-learn reports
    0.0 or 1.0 for it (``force_finite``), which would pass a meaningless number into the mean, so
    such a task is left out, as :func:`roc_auc` leaves out a task with one class.
    """
    scores = [skm.r2_score(t, p) for t, p in _regression_columns(output, target) if np.ptp(t) > 0]
    return float(np.mean(scores)) if scores else float("nan")


def roc_auc(output: Tensor, target: Tensor) -> float:
    """ROC-AUC: binary / multi-task logits (NaN targets ignored, tasks averaged) or multi-class
    logits (one-vs-rest on softmax probabilities)."""
    out = output.detach().double()
    if out.ndim == 2 and out.shape[1] > 1 and target.reshape(-1).shape[0] == out.shape[0]:
        probs = torch.softmax(out, dim=-1).numpy()
        return float(skm.roc_auc_score(target.reshape(-1).long().numpy(), probs, multi_class="ovr"))
    scores = [
        skm.roc_auc_score(t, p)
        for t, p in _regression_columns(out, target.double())
        if len(np.unique(t)) == 2
    ]
    if not scores:
        raise ValueError("roc_auc needs both classes present in at least one task")
    return float(np.mean(scores))


METRICS: dict[str, Callable[[Tensor, Tensor], float]] = {
    "accuracy": accuracy,
    "rmse": rmse,
    "mae": mae,
    "r2": r2,
    "roc_auc": roc_auc,
}
_HIGHER_IS_BETTER = {"accuracy", "r2", "roc_auc"}


def get_metric(name: str) -> Callable[[Tensor, Tensor], float]:
    """The metric function called ``name``."""
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; expected one of {sorted(METRICS)}") from None


def higher_is_better(name: str) -> bool:
    """Whether larger values of the (possibly ``train_``/``val_``-prefixed) metric are better."""
    base = name.removeprefix("val_").removeprefix("train_")
    return base in _HIGHER_IS_BETTER
