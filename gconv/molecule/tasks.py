r"""Task types of a molecule model: what the outputs mean, the loss, the ensemble's predictions
and the metrics, per task.

Three types, chemprop v2's names (``--task-type``):

* ``"regression"`` — one output per task, trained on standardised targets with a masked mean
  squared error; predictions are values in the targets' units.
* ``"classification"`` (binary) — one logit per task, binary cross-entropy on logits; predictions
  are the probability of class 1.
* ``"multiclass"`` — ``num_classes`` logits per task, cross-entropy; predictions are class
  probabilities, and the predicted class is the most probable one.

Every type takes several tasks (columns) at once, with missing labels: a NaN target (an empty
cell) counts in no loss and no metric. Metrics come from scikit-learn, per task over its labelled
molecules, then averaged over the tasks where they are defined (an AUROC needs both classes):

============== ===========================================================================
regression     ``rmse``, ``mae``, ``r2``
classification ``auroc``, ``auprc``, ``accuracy``, ``mcc``, ``balanced_accuracy`` (threshold 0.5)
multiclass     ``accuracy``, ``f1_macro``, ``auroc`` (one-vs-rest, macro)
============== ===========================================================================

Example::

    >>> tasks = Tasks(["active"], "classification")
    >>> loss = tasks.loss(class_weights=tasks.balance_weights(train_y))
    >>> tasks.scores(y_test, probabilities)["mean"]["auroc"]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn import metrics as skm
from torch import Tensor

from gconv.molecule.errors import UsageError

__all__ = ["TASK_TYPES", "METRICS", "Tasks"]

#: The task types, as ``--task-type`` names them.
TASK_TYPES: tuple[str, ...] = ("regression", "classification", "multiclass")

#: Metric names per task type, in the order they are reported.
METRICS: dict[str, tuple[str, ...]] = {
    "regression": ("rmse", "mae", "r2"),
    "classification": ("auroc", "auprc", "accuracy", "mcc", "balanced_accuracy"),
    "multiclass": ("accuracy", "f1_macro", "auroc"),
}
_HIGHER_IS_BETTER = {"r2", "auroc", "auprc", "accuracy", "mcc", "balanced_accuracy", "f1_macro"}


class Tasks:
    r"""The prediction tasks of a model: their names, their type and (multiclass) class count.

    Args:
        names (Sequence[str]): One name per task (the target columns).
        task_type (str, optional): ``"regression"``, ``"classification"`` or ``"multiclass"``.
            (default: :obj:`"regression"`)
        num_classes (int, optional): Classes per task of a multiclass model (every task has the
            same number, as in chemprop). (default: :obj:`None`; 2 for classification)

    Shapes:
        - **model outputs:** :math:`(N, T)`, or :math:`(N, T \cdot C)` for multiclass (task-major:
          the logits of task :math:`t` are columns :math:`tC .. tC + C - 1`)
        - **targets:** :math:`(N, T)` floats, NaN where missing (class indices as floats)
        - **predictions:** values or probabilities :math:`(N, T)`; class probabilities
          :math:`(N, T, C)` for multiclass
    """

    def __init__(
        self, names: Sequence[str], task_type: str = "regression", num_classes: int | None = None
    ) -> None:
        if task_type not in TASK_TYPES:
            raise ValueError(f"task_type must be one of {list(TASK_TYPES)}, got {task_type!r}")
        names = [str(name) for name in names]
        if not names:
            raise ValueError("Tasks expected at least one task name")
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be distinct, got {names}")
        if task_type == "multiclass":
            if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
                raise ValueError(f"a multiclass task needs num_classes >= 2, got {num_classes!r}")
        else:
            num_classes = 2 if task_type == "classification" else None
        self.names = names
        self.task_type = task_type
        self.num_classes = num_classes

    # ------------------------------------------------------------------ shape
    @property
    def num_tasks(self) -> int:
        return len(self.names)

    @property
    def out_channels(self) -> int:
        """Model outputs per molecule: one per task, ``num_classes`` per task for multiclass."""
        if self.task_type == "multiclass":
            return self.num_tasks * self.num_classes
        return self.num_tasks

    @property
    def metric_names(self) -> tuple[str, ...]:
        return METRICS[self.task_type]

    def to_dict(self) -> dict[str, Any]:
        """``{"names", "type", "num_classes"}``, as the model directory's ``config.json`` holds."""
        return {"names": list(self.names), "type": self.task_type, "num_classes": self.num_classes}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Tasks:
        num_classes = state.get("num_classes") if state["type"] == "multiclass" else None
        return cls(state["names"], state["type"], num_classes)

    def __repr__(self) -> str:
        classes = f", num_classes={self.num_classes}" if self.task_type == "multiclass" else ""
        return f"Tasks({self.names}, {self.task_type!r}{classes})"

    # ------------------------------------------------------------------ labels
    def check_labels(self, y: np.ndarray, rows: Sequence[int]) -> None:
        """Classification labels must be 0 or 1, multiclass labels integers in ``[0, C)``; NaN
        (an empty cell) is a missing label. Regression takes any finite number.

        Raises:
            UsageError: naming the input row, the column and the value.
        """
        if self.task_type == "regression":
            return
        labelled = ~np.isnan(y)
        if self.task_type == "classification":
            bad = labelled & (y != 0) & (y != 1)
            expected = "0 or 1"
        else:
            bad = labelled & ((y != np.round(y)) | (y < 0) | (y >= self.num_classes))
            expected = f"an integer class from 0 to {self.num_classes - 1}"
        if bad.any():
            position, task = (int(i) for i in np.argwhere(bad)[0])
            raise UsageError(
                f"row {rows[position]}, column {self.names[task]!r}: a {self.task_type} label "
                f"must be {expected} (or empty for a missing label), got {y[position, task]:g}"
            )

    def balance_weights(self, y_train: np.ndarray) -> Tensor:
        """Class weights that balance the training labels (``--class-balance``): per task, the
        positives' weight ``n_negative / n_positive`` (classification, ``[T]``), or ``n / (C n_c)``
        per class (multiclass, scikit-learn's "balanced", ``[T, C]``; 1 for an absent class)."""
        if self.task_type == "regression":
            raise ValueError("class weights need a classification or multiclass task")
        weights = []
        for t in range(self.num_tasks):
            labels = y_train[~np.isnan(y_train[:, t]), t].astype(np.int64)
            counts = np.bincount(labels, minlength=self.num_classes).astype(np.float64)
            if self.task_type == "classification":
                weights.append(counts[0] / counts[1] if counts.all() else 1.0)
            else:
                present = counts > 0
                w = np.ones(self.num_classes)
                w[present] = counts.sum() / (present.sum() * counts[present])
                weights.append(w)
        return torch.tensor(np.array(weights), dtype=torch.float32)

    # ------------------------------------------------------------------ loss
    def loss(
        self,
        task_weights: Sequence[float] | None = None,
        class_weights: Tensor | None = None,
    ) -> Callable[[Tensor, Tensor], Tensor]:
        """The training loss ``fn(output, target)``: the weighted mean over every labelled
        (non-NaN) target of the batch — masked MSE (regression, on standardised targets), binary
        cross-entropy on logits, or cross-entropy per task.

        Args:
            task_weights (Sequence[float], optional): One weight per task, multiplying its terms
                (chemprop's ``--task-weights``). (default: all 1)
            class_weights (Tensor, optional): From :meth:`balance_weights`: the positives' weight
                per task (``pos_weight`` of the BCE), or a weight per task and class.
                (default: :obj:`None`)
        """
        weights = torch.ones(self.num_tasks)
        if task_weights is not None:
            if len(task_weights) != self.num_tasks:
                raise ValueError(
                    f"task_weights needs one weight per task ({self.num_tasks}: {self.names}), "
                    f"got {len(task_weights)}"
                )
            weights = torch.tensor([float(w) for w in task_weights])
        return _TaskLoss(self.task_type, self.num_tasks, self.num_classes, weights, class_weights)

    # ------------------------------------------------------------------ predictions
    def predictions(
        self, outputs: Tensor, temperature: Tensor | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ensemble's predictions from its members' outputs.

        Args:
            outputs (Tensor): ``[M, N, out_channels]`` per member, in the targets' units for
                regression (standardisation undone), logits otherwise.
            temperature (Tensor, optional): Per task, the logits are divided by it before the
                sigmoid / softmax (temperature scaling, ``[T]``). (default: :obj:`None`)

        Returns:
            ``(prediction, std)``: values or probabilities ``[N, T]`` (``[N, T, C]`` for
            multiclass), and the members' spread ``[N, T]`` (population standard deviation: 0
            for one member) of the value, the probability of class 1, or the probability of the
            predicted class.
        """
        outputs = outputs.double()
        members, n = outputs.shape[:2]
        if self.task_type == "regression":
            values = outputs
        else:
            per_task = self.out_channels // self.num_tasks  # explicit: n may be 0
            logits = outputs.view(members, n, self.num_tasks, per_task)
            if temperature is not None:
                logits = logits / temperature.double().view(1, 1, -1, 1)
            if self.task_type == "classification":
                values = torch.sigmoid(logits[..., 0])
            else:
                values = torch.softmax(logits, dim=-1)
        mean = values.mean(0)
        # (no molecules: torch warns about the degrees of freedom of an empty std)
        spread = values.std(0, unbiased=False) if n else torch.zeros(mean.shape, dtype=mean.dtype)
        if self.task_type == "multiclass":  # the spread of the predicted class's probability
            spread = spread.gather(-1, mean.argmax(-1, keepdim=True)).squeeze(-1)
        return mean.numpy(), spread.numpy()

    # ------------------------------------------------------------------ metrics
    def scores(self, y_true: np.ndarray, prediction: np.ndarray) -> dict[str, dict]:
        """Metrics per task over its labelled molecules, and their mean over the tasks where they
        are defined: ``{"per_task": {task: {metric: value}}, "mean": {metric: value}}``; a metric
        undefined on a task (an AUROC with one class present, an R² of constant labels) is
        :obj:`None` there."""
        per_task = {}
        for t, name in enumerate(self.names):
            labelled = ~np.isnan(y_true[:, t])
            y, p = y_true[labelled, t], prediction[labelled, t]
            per_task[name] = (
                _task_scores(self.task_type, y, p, self.num_classes)
                if labelled.any()
                else dict.fromkeys(self.metric_names)
            )
        mean = {}
        for metric in self.metric_names:
            values = [s[metric] for s in per_task.values() if s[metric] is not None]
            mean[metric] = float(np.mean(values)) if values else None
        return {"per_task": per_task, "mean": mean}

    @staticmethod
    def higher_is_better(metric: str) -> bool:
        return metric in _HIGHER_IS_BETTER


class _TaskLoss:
    """The weighted, masked loss of :meth:`Tasks.loss` (a class, so the Trainer treats it as a
    custom loss: a mean over the labelled targets, weighted by their count)."""

    def __init__(self, task_type, num_tasks, num_classes, task_weights, class_weights):
        self.task_type = task_type
        self.num_tasks = num_tasks
        self.num_classes = num_classes
        self.task_weights = task_weights
        self.class_weights = class_weights

    def __call__(self, output: Tensor, target: Tensor) -> Tensor:
        target = target.reshape(output.shape[0], self.num_tasks).to(output.dtype)
        valid = ~torch.isnan(target)
        filled = torch.where(valid, target, 0.0)
        device = output.device
        if self.task_type == "regression":
            terms = (output - filled).pow(2)
        elif self.task_type == "classification":
            pos_weight = None if self.class_weights is None else self.class_weights.to(device)
            terms = F.binary_cross_entropy_with_logits(
                output, filled, pos_weight=pos_weight, reduction="none"
            )
        else:
            logits = output.view(-1, self.num_tasks, self.num_classes)
            labels = filled.long()
            terms = -torch.log_softmax(logits, dim=-1).gather(-1, labels.unsqueeze(-1))
            terms = terms.squeeze(-1)
            if self.class_weights is not None:
                per_class = self.class_weights.to(device, output.dtype)  # [T, C]
                terms = terms * per_class.gather(-1, labels.T).T
        terms = terms * self.task_weights.to(device, output.dtype)
        # a batch without labels: zero with a graph, not the NaN of an empty mean
        return torch.where(valid, terms, 0.0).sum() / valid.sum().clamp_min(1)


def _task_scores(
    task_type: str, y: np.ndarray, p: np.ndarray, num_classes: int | None
) -> dict[str, float | None]:
    """One task's metrics over its labelled molecules (``y`` labels or values, ``p`` values,
    probabilities of class 1, or ``[n, C]`` class probabilities)."""
    if task_type == "regression":
        return {
            "rmse": math.sqrt(skm.mean_squared_error(y, p)),
            "mae": float(skm.mean_absolute_error(y, p)),
            # undefined for constant labels: scikit-learn's 0.0 / 1.0 says nothing of the model
            "r2": float(skm.r2_score(y, p)) if len(y) > 1 and np.ptp(y) > 0 else None,
        }
    y = y.astype(np.int64)
    both = len(np.unique(y)) > 1
    with warnings.catch_warnings():  # one-class splits: undefined metrics are None, not warnings
        warnings.simplefilter("ignore")
        if task_type == "classification":
            label = (p >= 0.5).astype(np.int64)
            return {
                "auroc": float(skm.roc_auc_score(y, p)) if both else None,
                "auprc": float(skm.average_precision_score(y, p)) if both else None,
                "accuracy": float(skm.accuracy_score(y, label)),
                "mcc": float(skm.matthews_corrcoef(y, label)) if both else None,
                "balanced_accuracy": float(skm.balanced_accuracy_score(y, label)) if both else None,
            }
        label = p.argmax(-1)
        classes = list(range(num_classes))
        auroc = None
        if len(np.unique(y)) == num_classes:  # one-vs-rest needs every class present
            auroc = float(skm.roc_auc_score(y, p, multi_class="ovr", labels=classes))
        return {
            "accuracy": float(skm.accuracy_score(y, label)),
            "f1_macro": float(skm.f1_score(y, label, average="macro", zero_division=0)),
            "auroc": auroc,
        }
