"""What ``gconv train`` reports besides the model: the parity plot and the results table (the
training-time ``predictions.csv`` is :func:`gconv.data.write_predictions_csv`'s)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gconv.molecule.tasks import Tasks

__all__ = ["parity_plot", "print_results"]

_LABELS = {
    "rmse": "RMSE",
    "mae": "MAE",
    "r2": "R2",
    "auroc": "AUROC",
    "auprc": "AUPRC",
    "accuracy": "acc",
    "mcc": "MCC",
    "balanced_accuracy": "bal.acc",
    "f1_macro": "F1",
}


def parity_plot(
    path: Path,
    y_test: np.ndarray,
    prediction: np.ndarray,
    fp_prediction: np.ndarray | None,
    tasks: Tasks,
    model_name: str,
    title: str,
) -> None:
    """Test-set parity plot of the first task: the model and the fingerprint baseline."""
    # a Figure without pyplot: no backend to choose, nothing left open in the caller's session
    from matplotlib.figure import Figure

    def rmse(p: np.ndarray) -> float:
        return float(np.sqrt(np.mean((p - truth) ** 2))) if truth.size else float("nan")

    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.subplots()
    labelled = ~np.isnan(y_test[:, 0])
    truth = y_test[labelled, 0]
    if fp_prediction is not None:
        fp = fp_prediction[labelled, 0]
        ax.scatter(truth, fp, s=10, alpha=0.5, label=f"Morgan FP ({rmse(fp):.3f})")
    ours = prediction[labelled, 0]
    ax.scatter(truth, ours, s=10, alpha=0.7, label=f"{model_name} ({rmse(ours):.3f})")
    if truth.size:
        lo, hi = float(np.min(truth)), float(np.max(truth))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    name = tasks.names[0]
    ax.set(xlabel=f"true {name}", ylabel=f"predicted {name}", title=title)
    ax.legend(title="test RMSE", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def print_results(
    tasks: Tasks,
    conv: str,
    ensemble_size: int,
    constant: dict[str, float | None],
    fingerprint: dict[str, float | None],
    model: dict[str, float | None],
    fp_models: list[str] | None,
) -> None:
    """The test-set table: the constant baseline, the fingerprint baseline (when fitted) and the
    model, one column per metric (the mean over tasks)."""
    metrics = tasks.metric_names
    print(f"{'model':<22}" + "".join(f"{'test ' + _LABELS[m]:>13}" for m in metrics))
    name = conv.upper() + (f" x{ensemble_size}" if ensemble_size > 1 else "")
    constant_name = "mean predictor" if tasks.task_type == "regression" else "class frequencies"
    rows = [(constant_name, constant), ("Morgan FP baseline", fingerprint), (name, model)]
    for label, scores in rows if fp_models is not None else rows[::2]:
        cells = "".join(
            f"{'-' if scores[m] is None else format(scores[m], '.4f'):>13}" for m in metrics
        )
        print(f"{label:<22}{cells}")
    if fp_models is not None:
        print(f"FP baseline: {', '.join(fp_models)} (chosen on validation)")
