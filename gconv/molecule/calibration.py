r"""Uncertainty that means what it says: prediction intervals for regression, calibrated
probabilities for classification, fitted on validation molecules; and how the test split rates
them.

* **Regression — normalised split-conformal intervals** (Vovk et al.; the locally weighted
  variant of `Lei et al. 2018 <https://arxiv.org/abs/1604.04173>`_). A molecule's difficulty
  :math:`\sigma(x)` is its mean Euclidean distance to the :data:`NEIGHBOURS` nearest training
  molecules in the model's own molecule embedding (the head's input; averaged over the
  ensemble's members), measured against a seeded sample of at most :data:`REFERENCE_SIZE` training molecules kept in the model
  directory (``calibration.pt``). Per task, the scores :math:`s_i = |y_i - \hat y_i| /
  \sigma(x_i)` of the :math:`n` labelled calibration molecules give :math:`q = s_{(k)}`, the
  :math:`k`-th smallest with :math:`k = \lceil (n + 1)c \rceil` for confidence :math:`c`, and
  the interval :math:`\hat y \pm q\,\sigma(x)`: wider for a molecule unlike the training
  set, narrower for one among its neighbours. It holds a new molecule's value with
  probability at least :math:`c` when molecules are exchangeable with the calibration ones.
  With :math:`k > n` (fewer than :math:`c / (1 - c)` labels) no finite :math:`q` guarantees
  :math:`c`; the largest score is taken and ``guaranteed`` is false.
* **Residuals that chose nothing.** The validation split also chooses the best epoch, and the
  epoch it chooses is the one whose validation errors happen to be small, so the best model's
  validation residuals understate its errors on new molecules (measured in
  ``benchmarks/bench_calibration.py``: on every run the best epoch's validation RMSE is below
  the final epoch's, its test RMSE is not). ``gconv train`` therefore scores the validation
  molecules with the ensemble of each member's *final* epoch, which the one-cycle schedule
  fixes in advance, and centres the interval on the best epoch's prediction: exact where the
  best epoch is the last, and erring wide where the final epoch generalises worse. With
  ``calibration_holdout`` it instead cuts the validation split in two by scaffold group
  (:func:`gconv.molecule.training.split_calibration`): one half chooses the epoch, the other
  calibrates with the best epoch's residuals (split conformal's own guarantee, at the price of
  an epoch chosen on half the molecules: a worse test RMSE on the small benchmark sets).
* **Classification — temperature scaling** (`Guo et al. 2017 <https://arxiv.org/abs/1706.04599>`_):
  per task, one :math:`T > 0` dividing every member's logits, chosen to minimise the negative
  log-likelihood of the ensemble's probabilities on the validation labels. Dividing by :math:`T`
  keeps each member's ranking of molecules, so AUROC of a single model is unchanged.
* **Expected calibration error** (ECE, 10 equal-width bins, the definition of torchmetrics'
  ``binary_calibration_error`` / ``multiclass_calibration_error``, tested equal): binary tasks
  compare the probability of class 1 with the label's frequency, multiclass tasks the top class's
  probability with its accuracy.

A model directory written before the normalised interval holds ``{"method": "conformal",
"half_width": [T]}``: it still predicts the constant interval :math:`\hat y \pm` ``half_width``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from torch import Tensor

from gconv.molecule.model import MoleculeModel
from gconv.molecule.tasks import Tasks

__all__ = [
    "calibrate",
    "conformal_half_width",
    "fit_conformal",
    "set_reference",
    "fit_normalized",
    "knn_distance",
    "reference_sample",
    "fit_temperature",
    "coverage",
    "expected_calibration_error",
]

_TEMPERATURE_RANGE = (0.05, 20.0)
#: Training molecules whose embeddings a normalised interval measures distances to (a seeded
#: sample where the training split is larger): 5,000 x 128 float32 numbers are 2.6 MB a member.
REFERENCE_SIZE = 5000
#: Nearest reference molecules averaged in a molecule's difficulty.
NEIGHBOURS = 5


def conformal_half_width(residuals: np.ndarray, confidence: float) -> tuple[float, bool]:
    """The split-conformal half-width of absolute ``residuals`` at ``confidence``, and whether
    it carries the guarantee (enough residuals)."""
    residuals = np.sort(np.abs(np.asarray(residuals, dtype=np.float64)))
    n = len(residuals)
    if n == 0:
        return math.nan, False
    k = math.ceil((n + 1) * confidence)
    return float(residuals[min(k, n) - 1]), k <= n


def fit_conformal(
    tasks: Tasks,
    y_val: np.ndarray,
    prediction: np.ndarray,
    confidence: float,
    difficulty: np.ndarray | None = None,
) -> dict:
    r"""Split-conformal intervals per task from the calibration labels ``y_val`` ``[N, T]`` (NaN:
    missing) and the ensemble's predictions of them (regression).

    Without ``difficulty``: ``{"method": "conformal", "confidence", "half_width": [T], "n": [T],
    "guaranteed": [T]}``, the interval ``prediction ± half_width``. With ``difficulty``
    :math:`\sigma(x) > 0` ``[N]``: the normalised score :math:`|y - \hat y| / \sigma(x)`,
    ``{"method": "normalized_conformal", ..., "quantile": [T]}`` in place of ``half_width``, the
    interval ``prediction ± quantile * sigma(x)``.
    """
    if difficulty is not None:
        difficulty = np.asarray(difficulty, dtype=np.float64)
        if difficulty.shape != (len(y_val),) or not (difficulty > 0).all():
            raise ValueError(
                f"fit_conformal expected a difficulty > 0 per molecule, shape ({len(y_val)},), "
                f"got shape {difficulty.shape}"
                + ("" if difficulty.shape != (len(y_val),) else f", minimum {difficulty.min()}")
            )
    quantiles, counts, guaranteed = [], [], []
    for t in range(tasks.num_tasks):
        labelled = ~np.isnan(y_val[:, t])
        residuals = y_val[labelled, t] - prediction[labelled, t]
        if difficulty is not None:
            residuals = residuals / difficulty[labelled]
        q, exact = conformal_half_width(residuals, confidence)
        quantiles.append(q)
        counts.append(int(labelled.sum()))
        guaranteed.append(exact)
    method = "conformal" if difficulty is None else "normalized_conformal"
    key = "half_width" if difficulty is None else "quantile"
    return {
        "method": method,
        "confidence": confidence,
        key: quantiles,
        "n": counts,
        "guaranteed": guaranteed,
    }


def knn_distance(reference: Tensor, query: Tensor, k: int = NEIGHBOURS) -> Tensor:
    """``[N]``: the mean Euclidean distance of each ``query`` row ``[N, D]`` to its ``k``
    nearest ``reference`` rows ``[R, D]`` (float64; ``min(k, R)`` where fewer), computed a block
    of queries at a time so that memory stays ``O(block * R)``."""
    if reference.ndim != 2 or query.ndim != 2 or reference.shape[1] != query.shape[1]:
        raise ValueError(
            f"knn_distance expected reference [R, D] and query [N, D], got shapes "
            f"{tuple(reference.shape)} and {tuple(query.shape)}"
        )
    if len(reference) == 0:
        raise ValueError("knn_distance needs at least one reference row")
    reference = reference.double()
    k = min(k, len(reference))
    out = []
    for block in query.double().split(1024):
        # the matrix-product form: ~10x faster than the direct one (it matters at predict time
        # on a million molecules); in float64 its rounding (~1e-14 relative) is far below
        # anything an interval width shows
        distances = torch.cdist(block, reference, compute_mode="use_mm_for_euclid_dist")
        out.append(distances.topk(k, dim=1, largest=False).values.mean(1))
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)


def reference_sample(num_train: int, seed: int, size: int = REFERENCE_SIZE) -> list[int]:
    """Sorted positions of the training molecules whose embeddings a normalised interval keeps:
    all of them up to ``size``, else a seeded sample of ``size``."""
    if num_train <= size:
        return list(range(num_train))
    return sorted(np.random.default_rng(seed).choice(num_train, size, replace=False).tolist())


def fit_temperature(tasks: Tasks, outputs: Tensor, y_val: np.ndarray) -> dict:
    """``{"method": "temperature", "temperature": [T], "n": [T]}``: per task, the temperature
    minimising the validation NLL of the ensemble's probabilities (``outputs``: ``[M, N,
    out_channels]`` logits). A task with fewer than two classes among its validation labels
    keeps :math:`T = 1`."""
    temperatures, counts = [], []
    per_task = tasks.out_channels // tasks.num_tasks
    logits = outputs.double().view(outputs.shape[0], outputs.shape[1], tasks.num_tasks, per_task)
    for t in range(tasks.num_tasks):
        labelled = ~np.isnan(y_val[:, t])
        labels = torch.from_numpy(y_val[labelled, t].astype(np.int64))
        counts.append(int(labelled.sum()))
        if len(torch.unique(labels)) < 2:
            temperatures.append(1.0)
            continue
        z = logits[:, torch.from_numpy(labelled), t]  # [M, n, 1 or C]

        def nll(log_t: float, z=z, labels=labels) -> float:
            scaled = z / math.exp(log_t)
            if tasks.task_type == "classification":
                p1 = torch.sigmoid(scaled[..., 0]).mean(0)
                p = torch.where(labels == 1, p1, 1 - p1)
            else:
                p = torch.softmax(scaled, -1).mean(0).gather(-1, labels[:, None])[:, 0]
            return float(-torch.log(p.clamp_min(1e-12)).mean())

        low, high = (math.log(v) for v in _TEMPERATURE_RANGE)
        result = minimize_scalar(nll, bounds=(low, high), method="bounded")
        temperatures.append(float(math.exp(result.x)))
    return {"method": "temperature", "temperature": temperatures, "n": counts}


def coverage(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> list[float | None]:
    """Per task, the fraction of labelled molecules whose value lies in ``[lo, hi]``."""
    result = []
    for t in range(y.shape[1]):
        labelled = ~np.isnan(y[:, t])
        inside = (lo[labelled, t] <= y[labelled, t]) & (y[labelled, t] <= hi[labelled, t])
        result.append(float(inside.mean()) if labelled.any() else None)
    return result


def _ece(confidence: np.ndarray, correct: np.ndarray, n_bins: int) -> float:
    # torchmetrics' binning: bucketize(right=True) - 1 on linspace(0, 1, n_bins + 1)
    boundaries = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(boundaries, confidence, side="right") - 1
    total = 0.0
    for b in np.unique(bins):
        members = bins == b
        total += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(total)


def expected_calibration_error(
    tasks: Tasks, y: np.ndarray, prediction: np.ndarray, n_bins: int = 10
) -> list[float | None]:
    """Per task, the ECE of the probabilities (classification: of class 1 against the label;
    multiclass: of the top class against its being right) over the labelled molecules."""
    if tasks.task_type == "regression":
        raise ValueError("the expected calibration error needs class probabilities")
    result = []
    for t in range(tasks.num_tasks):
        labelled = ~np.isnan(y[:, t])
        if not labelled.any():
            result.append(None)
            continue
        labels = y[labelled, t].astype(np.int64)
        if tasks.task_type == "classification":
            confidence, correct = prediction[labelled, t], labels.astype(np.float64)
        else:
            probs = prediction[labelled, t]
            confidence = probs.max(-1)
            correct = (probs.argmax(-1) == labels).astype(np.float64)
        result.append(_ece(confidence, correct, n_bins))
    return result


def set_reference(model: MoleculeModel, train: Any, seed: int = 0) -> int:
    """Sets the normalised interval's reference on ``model``: every member's embeddings of the
    :func:`reference_sample` of the training molecules ``train``, and a calibration that names
    the method, so that :meth:`MoleculeModel.predict_with_difficulty` gives each molecule's
    :math:`\\sigma(x)` from the pass that predicts it (the quantile comes from
    :func:`fit_normalized`). Returns the number of reference molecules."""
    from torch.utils.data import Dataset

    positions = reference_sample(len(train), seed)
    sample = train[positions] if isinstance(train, Dataset) else [train[i] for i in positions]
    _, reference, _ = model._run(sample, 256, embeddings=True)
    model.reference = reference
    model.calibration = {
        "method": "normalized_conformal",
        "neighbours": NEIGHBOURS,
        "offset": 0.0,  # kept in the format: model directories read it (always 0 from gconv)
        "n_reference": len(positions),
    }
    return len(positions)


def fit_normalized(
    model: MoleculeModel,
    graphs: dict[str, Any],
    y_val: np.ndarray,
    prediction_val: np.ndarray,
    confidence: float,
    seed: int = 0,
    calibration_set: str = "val",
    difficulty: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    r"""Fits the normalised interval (the module docstring) on the validation split and sets it
    on ``model`` (``calibration`` and ``reference``): the embeddings of :func:`reference_sample`
    training molecules, every member's; :math:`\sigma(x)` of the validation molecules; the
    conformal quantile of :math:`|y - \hat y| / \sigma(x)` per task. Returns the difficulty of
    the molecules of every split in ``graphs`` (``{"train": [N], "val": ..., ...}``).

    ``difficulty``: those already computed with the reference :func:`set_reference` set on
    ``model`` (``gconv train`` takes them from the pass that predicts each split, one pass
    instead of two); else the reference is set here and every split is run again."""
    if difficulty is None:
        set_reference(model, graphs["train"], seed)
        difficulty = {name: model.difficulty(part) for name, part in graphs.items()}
    elif not model.normalized or model.reference is None:
        raise ValueError("fit_normalized(difficulty=...) needs the reference set_reference sets")
    floor = 1e-12  # a validation molecule identical to every reference one: sigma 0
    fitted = fit_conformal(
        model.tasks,
        y_val,
        prediction_val,
        confidence,
        np.maximum(difficulty[calibration_set], floor),  # fmt: skip
    )
    # set_reference's fields (neighbours, offset, n_reference) and the fitted quantile
    model.calibration = {
        **model.calibration,
        **fitted,
        "embedding": "each member's molecule embedding (the head's input)",
    }
    return difficulty


def calibrate(
    model: MoleculeModel,
    predictions: dict[str, tuple[np.ndarray, np.ndarray]],
    graphs: dict[str, Any],
    y_val: np.ndarray,
    y_test: np.ndarray,
    enabled: bool,
    confidence: float,
    seed: int = 0,
    calibration_set: str = "val",
    residual_prediction: np.ndarray | None = None,
    difficulty: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Fits the calibration on the validation split (see the module docstring), sets it on
    ``model``, updates ``predictions`` (temperature-scaled probabilities) and returns what
    ``metrics.json`` reports: the calibration, the test coverage of the intervals (their mean as
    ``test_coverage``) and their mean half-width (``test_half_width``), or the test ECE
    (``test_ece``, and ``test_ece_uncalibrated``). For regression, ``report["intervals"]`` holds
    ``(lo, hi)`` of every split in ``graphs`` (popped by the caller: not for ``metrics.json``).

    ``calibration_set`` names the split of ``graphs`` and ``predictions`` that calibrates
    (labels ``y_val``); ``residual_prediction``, its predictions by another model whose
    residuals calibrate the interval (``gconv train``: the final epoch's), else
    ``predictions[calibration_set]``."""
    tasks = model.tasks
    names = tasks.names

    def mean(values: list[float | None]) -> float | None:
        defined = [v for v in values if v is not None]
        return float(np.mean(defined)) if defined else None

    report: dict[str, Any] = {"method": None}
    if tasks.task_type != "regression":
        before = expected_calibration_error(tasks, y_test, predictions["test"][0])
        report["test_ece_uncalibrated"] = mean(before)
        report["test_ece_uncalibrated_per_task"] = dict(zip(names, before, strict=True))
    if not enabled:
        if tasks.task_type != "regression":
            report["test_ece"] = report["test_ece_uncalibrated"]
        return report
    if tasks.task_type == "regression":
        if residual_prediction is None:
            residual_prediction = predictions[calibration_set][0]
        difficulty = fit_normalized(
            model, graphs, y_val, residual_prediction, confidence, seed, calibration_set,
            difficulty,
        )  # fmt: skip
        intervals = {
            name: model.interval(predictions[name][0], difficulty[name]) for name in graphs
        }
        lo, hi = intervals["test"]
        covered = coverage(y_test, lo, hi)
        half = (hi - lo) / 2
        widths = [
            float(half[~np.isnan(y_test[:, t]), t].mean()) if (~np.isnan(y_test[:, t])).any()
            else None
            for t in range(tasks.num_tasks)
        ]  # fmt: skip
        report.update(model.calibration)
        report["calibration_set"] = (
            "half the validation scaffolds, held out of model selection: the best epoch's residuals"
            if calibration_set != "val"
            else "the validation split: the final epoch's residuals (the best epoch was chosen on it)"
            if residual_prediction is not predictions["val"][0]
            else "the validation split: the best epoch's residuals"
        )
        report["test_coverage"] = mean(covered)
        report["test_coverage_per_task"] = dict(zip(names, covered, strict=True))
        report["test_half_width"] = mean(widths)
        report["test_half_width_per_task"] = dict(zip(names, widths, strict=True))
        report["intervals"] = intervals
        text = ", ".join(f"{w:.4g}" if w is not None else "-" for w in widths)
        report["summary"] = f"{confidence:.0%} interval, mean test half-width [{text}]"
        if report["test_coverage"] is not None:
            report["summary"] += f", test coverage {report['test_coverage']:.2f}"
        if not all(model.calibration["guaranteed"]):
            report["summary"] += (
                f" (too few validation labels for a {confidence:.0%} guarantee: the largest "
                "score is used)"
            )
        return report
    model.calibration = fit_temperature(tasks, model.outputs(graphs["val"]), y_val)
    for name, part_graphs in graphs.items():
        predictions[name] = model.predict_graphs(part_graphs)
    after = expected_calibration_error(tasks, y_test, predictions["test"][0])
    report.update(model.calibration)
    report["test_ece"] = mean(after)
    report["test_ece_per_task"] = dict(zip(names, after, strict=True))
    temperatures = ", ".join(f"{t:.3g}" for t in model.calibration["temperature"])
    if report["test_ece"] is not None:
        report["summary"] = (
            f"temperature [{temperatures}], test ECE {report['test_ece']:.3f} (uncalibrated "
            f"{report['test_ece_uncalibrated']:.3f})"
        )
    return report
