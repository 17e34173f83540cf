"""The baselines ``gconv train`` scores on the same split: a constant, and a model on Morgan
fingerprints (radius 2, 2048 bits) chosen on validation.

* regression: the training mean; ridge regression (alpha 0.1 / 1 / 10 / 100) or a random forest,
  whichever has the lowest validation RMSE;
* classification and multiclass: the training class frequencies; logistic regression (C 0.1 / 1
  / 10) or a random forest, whichever has the lowest validation log-loss.

Each task is fitted on its own labelled molecules. Predictions come in the format of
:meth:`gconv.molecule.Tasks.predictions`, so :meth:`~gconv.molecule.Tasks.scores` scores them
like the graph network.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import log_loss, mean_squared_error

from gconv.molecule.tasks import Tasks

__all__ = ["constant_baseline", "fingerprint_baseline"]


def constant_baseline(tasks: Tasks, y_train: np.ndarray, n: int) -> np.ndarray:
    """The same prediction for ``n`` molecules: per task the training mean (regression), the
    positive rate (classification) or the class frequencies (multiclass)."""
    if tasks.task_type != "multiclass":
        with np.errstate(all="ignore"):
            return np.broadcast_to(np.nanmean(y_train, axis=0), (n, tasks.num_tasks)).copy()
    frequencies = np.empty((tasks.num_tasks, tasks.num_classes))
    for t in range(tasks.num_tasks):
        labels = y_train[~np.isnan(y_train[:, t]), t].astype(np.int64)
        counts = np.bincount(labels, minlength=tasks.num_classes)
        frequencies[t] = counts / max(counts.sum(), 1)
    return np.broadcast_to(frequencies, (n, *frequencies.shape)).copy()


def _candidates(tasks: Tasks, seed: int) -> dict[str, Callable]:
    if tasks.task_type == "regression":
        return {
            **{f"ridge(alpha={a:g})": lambda a=a: Ridge(alpha=a) for a in (0.1, 1.0, 10.0, 100.0)},
            "random forest": lambda: RandomForestRegressor(
                n_estimators=100, max_features=0.33, random_state=seed, n_jobs=1
            ),
        }
    return {
        **{
            f"logistic(C={c:g})": lambda c=c: LogisticRegression(C=c, max_iter=1000)
            for c in (0.1, 1.0, 10.0)
        },
        "random forest": lambda: RandomForestClassifier(
            n_estimators=100, random_state=seed, n_jobs=1
        ),
    }


def fingerprint_baseline(
    tasks: Tasks,
    fp_train: np.ndarray,
    y_train: np.ndarray,
    fp_val: np.ndarray,
    y_val: np.ndarray,
    fp_test: np.ndarray,
    seed: int,
) -> tuple[np.ndarray, list[str]]:
    """Per task: the fingerprint model with the best validation score, its test predictions
    (values, probabilities of class 1, or class probabilities ``[n, T, C]``) and its name. Ridge
    is often the stronger one on small congeneric series."""
    candidates = _candidates(tasks, seed)
    shape = (len(fp_test), tasks.num_tasks)
    if tasks.task_type == "multiclass":
        shape = (*shape, tasks.num_classes)
    prediction, chosen = np.empty(shape, dtype=np.float64), []
    for t in range(tasks.num_tasks):
        train_rows, val_rows = ~np.isnan(y_train[:, t]), ~np.isnan(y_val[:, t])
        y_fit = y_train[train_rows, t]
        if tasks.task_type != "regression" and len(np.unique(y_fit)) < 2:
            # one class in training: nothing to learn, predict the training frequencies
            constant = constant_baseline(tasks, y_train[:, t : t + 1], len(fp_test))
            prediction[:, t] = constant[:, 0]
            chosen.append("constant (one class in training)")
            continue
        best = (math.inf, "", None)
        for name, build in candidates.items():
            model = build().fit(fp_train[train_rows], y_fit)
            if not val_rows.any():  # nothing to choose on (tiny smoke runs): take the first
                best = (0.0, name, model)
                break
            error = _validation_error(tasks, model, fp_val[val_rows], y_val[val_rows, t])
            if error < best[0]:
                best = (error, name, model)
        prediction[:, t] = _predict(tasks, best[2], fp_test)
        chosen.append(best[1])
    return prediction, chosen


def _predict(tasks: Tasks, model, features: np.ndarray) -> np.ndarray:
    if tasks.task_type == "regression":
        return model.predict(features)
    probabilities = model.predict_proba(features)
    if tasks.task_type == "classification":
        return probabilities[:, list(model.classes_).index(1)]
    full = np.zeros((len(features), tasks.num_classes))  # classes absent in training: 0
    full[:, model.classes_.astype(np.int64)] = probabilities
    return full


def _validation_error(tasks: Tasks, model, features: np.ndarray, y: np.ndarray) -> float:
    if tasks.task_type == "regression":
        return mean_squared_error(y, model.predict(features)) ** 0.5
    p = _predict(tasks, model, features)
    if tasks.task_type == "classification":
        p = np.stack([1 - p, p], axis=1)
    p = np.clip(p, 1e-7, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    return log_loss(y.astype(np.int64), p, labels=list(range(p.shape[1])))
