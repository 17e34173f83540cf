"""gconv.molecule.calibration: the conformal quantile, temperature scaling, coverage and the ECE
(equal to torchmetrics' definition), and what train / predict make of them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from molecule_data import QUICK, read_csv

from gconv.cli import run
from gconv.molecule import Tasks, load_model
from gconv.molecule.calibration import (
    conformal_half_width,
    coverage,
    expected_calibration_error,
    fit_conformal,
    fit_temperature,
)


def test_conformal_half_width_is_the_finite_sample_quantile():
    residuals = np.arange(1.0, 20.0)  # n = 19: k = ceil(20 * 0.9) = 18
    assert conformal_half_width(-residuals, 0.9) == (18.0, True)
    assert conformal_half_width(residuals[:5], 0.9) == (5.0, False)  # k = 6 > 5: the largest
    q, exact = conformal_half_width(np.array([]), 0.9)
    assert math.isnan(q) and not exact


def test_conformal_intervals_cover_exchangeable_data():
    rng = np.random.default_rng(0)
    tasks = Tasks(["a", "b"])
    y_val, y_test = rng.normal(size=(2000, 2)), rng.normal(size=(20000, 2))
    calibration = fit_conformal(tasks, y_val, np.zeros_like(y_val), 0.9)
    assert calibration["guaranteed"] == [True, True] and calibration["n"] == [2000, 2000]
    half = np.asarray(calibration["half_width"])
    covered = coverage(y_test, np.zeros_like(y_test) - half, np.zeros_like(y_test) + half)
    # coverage is Beta-distributed around 0.9 (sd ~ 0.007 for n = 2,000)
    assert all(abs(c - 0.9) < 0.025 for c in covered)


def test_temperature_scaling_undoes_overconfidence():
    torch.manual_seed(0)
    logits = torch.randn(2000)
    labels = torch.bernoulli(torch.sigmoid(logits)).numpy()[:, None]
    overconfident = (3.0 * logits)[None, :, None]  # one member, logits 3x too large
    tasks = Tasks(["y"], "classification")
    calibration = fit_temperature(tasks, overconfident, labels)
    assert calibration["temperature"][0] == pytest.approx(3.0, rel=0.15)
    before, _ = tasks.predictions(overconfident)
    after, _ = tasks.predictions(overconfident, torch.tensor(calibration["temperature"]))
    ece_before = expected_calibration_error(tasks, labels, before)[0]
    ece_after = expected_calibration_error(tasks, labels, after)[0]
    assert ece_after < 0.5 * ece_before
    one_class = fit_temperature(tasks, overconfident, np.ones((2000, 1)))
    assert one_class["temperature"] == [1.0]


def test_expected_calibration_error_equals_torchmetrics():
    functional = pytest.importorskip("torchmetrics.functional.classification")
    rng = np.random.default_rng(1)
    p = rng.random(300)
    y = (rng.random(300) < p**2).astype(float)
    ours = expected_calibration_error(Tasks(["y"], "classification"), y[:, None], p[:, None])[0]
    theirs = functional.binary_calibration_error(torch.tensor(p), torch.tensor(y).long(), n_bins=10)
    assert ours == pytest.approx(float(theirs), abs=1e-9)
    probs = rng.dirichlet(np.ones(4), size=300)
    labels = rng.integers(0, 4, size=300)
    ours = expected_calibration_error(
        Tasks(["y"], "multiclass", 4), labels[:, None].astype(float), probs[:, None, :]
    )[0]
    theirs = functional.multiclass_calibration_error(
        torch.tensor(probs), torch.tensor(labels), num_classes=4, n_bins=10
    )
    assert ours == pytest.approx(float(theirs), abs=1e-6)


def test_regression_run_reports_coverage_and_predict_writes_the_interval(regression_dir, tmp_path):
    metrics = json.loads((regression_dir / "metrics.json").read_text())
    calibration = metrics["calibration"]
    assert calibration["method"] == "conformal" and calibration["confidence"] == 0.9
    assert 0.0 <= metrics["test_coverage"] <= 1.0
    model = load_model(regression_dir)
    assert model.calibration["half_width"] == calibration["half_width"]
    table = model.predict(["CCO", "CCCCCCN"])
    assert list(table) == ["smiles", "size", "size_std", "size_lo", "size_hi", "error"]
    half = calibration["half_width"][0]
    assert np.allclose(table["size_hi"] - table["size"], half)
    assert np.allclose(table["size"] - table["size_lo"], half)


def test_classification_run_reports_ece_and_predicts_calibrated_probabilities(
    classification_dir,
):
    metrics = json.loads((classification_dir / "metrics.json").read_text())
    assert metrics["calibration"]["method"] == "temperature"
    assert set(metrics["calibration"]["test_ece_per_task"]) == {"has_o", "has_n"}
    assert metrics["test_ece"] is not None and metrics["test_ece_uncalibrated"] is not None
    model = load_model(classification_dir)
    graphs, _, _ = model.featurize(["CCO", "CCN"])
    raw, _ = model.tasks.predictions(model.outputs(graphs))
    calibrated, _ = model.predict_graphs(graphs)
    temperature = torch.tensor(model.calibration["temperature"])
    expected, _ = model.tasks.predictions(model.outputs(graphs), temperature)
    assert np.allclose(calibrated, expected)
    assert not np.allclose(calibrated, raw) or torch.allclose(temperature, torch.ones(2))


def test_no_calibration_and_the_confidence_option(tmp_path, data_csv):
    common = ["train", "--data-path", str(data_csv), "--target-columns", "size", *QUICK]
    off = run([*common, "--no-calibration", "--no-baselines", "-o", str(tmp_path / "off")])
    assert off["calibration"] == {"method": None} and "test_coverage" not in off
    assert load_model(tmp_path / "off").column_names() == ["size"]
    wide = run([*common, "--confidence", "0.5", "--no-baselines", "-o", str(tmp_path / "c")])
    assert wide["calibration"]["confidence"] == 0.5
    assert list(read_csv(tmp_path / "c" / "predictions.csv")[0])[-2:] == ["size_std", "error"]
    with pytest.raises(SystemExit):
        run([*common, "--confidence", "1.5"])
