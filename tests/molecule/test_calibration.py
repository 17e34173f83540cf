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
    knn_distance,
    reference_sample,
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


def test_normalized_intervals_cover_every_difficulty_where_a_constant_one_cannot():
    # y ~ N(0, sigma(x)^2) with a known sigma spanning a factor 10: |y| / sigma is exchangeable,
    # so the normalised interval covers 90 % overall and within every band of sigma; a constant
    # interval covers 90 % overall only, too much of the easy molecules and too few hard ones
    rng = np.random.default_rng(2)
    tasks = Tasks(["a"])

    def draw(n):
        sigma = np.exp(rng.uniform(np.log(0.1), np.log(1.0), n))
        return sigma, rng.normal(size=(n, 1)) * sigma[:, None]

    sigma_val, y_val = draw(4000)
    sigma_test, y_test = draw(40000)
    normalized = fit_conformal(tasks, y_val, np.zeros_like(y_val), 0.9, sigma_val)
    assert normalized["method"] == "normalized_conformal" and normalized["guaranteed"] == [True]
    q = normalized["quantile"][0]
    assert q == pytest.approx(1.645, abs=0.06)  # the standard normal's 95 % quantile
    constant = fit_conformal(tasks, y_val, np.zeros_like(y_val), 0.9)["half_width"][0]
    inside_normalized = np.abs(y_test[:, 0]) <= q * sigma_test
    inside_constant = np.abs(y_test[:, 0]) <= constant
    assert abs(inside_normalized.mean() - 0.9) < 0.015 and abs(inside_constant.mean() - 0.9) < 0.015
    easy, hard = sigma_test < 0.2, sigma_test > 0.6
    assert abs(inside_normalized[easy].mean() - 0.9) < 0.02
    assert abs(inside_normalized[hard].mean() - 0.9) < 0.02
    assert inside_constant[easy].mean() > 0.97 and inside_constant[hard].mean() < 0.8
    with pytest.raises(ValueError, match="difficulty > 0 per molecule"):
        fit_conformal(tasks, y_val, np.zeros_like(y_val), 0.9, np.zeros(len(y_val)))
    with pytest.raises(ValueError, match=r"shape \(4000,\)"):
        fit_conformal(tasks, y_val, np.zeros_like(y_val), 0.9, sigma_val[:10])


def test_normalized_conformal_skips_missing_labels_per_task():
    y = np.array([[1.0, np.nan], [2.0, 4.0], [np.nan, 8.0], [3.0, 2.0]])
    sigma = np.array([1.0, 2.0, 4.0, 0.5])
    fitted = fit_conformal(Tasks(["a", "b"]), y, np.zeros_like(y), 0.5, sigma)
    # a: scores 1, 1, 6 -> k = ceil(4 * 0.5) = 2nd smallest; b: 2, 2, 4 -> 2
    assert fitted["quantile"] == [1.0, 2.0] and fitted["n"] == [3, 3]


def test_knn_distance_is_the_mean_distance_to_the_nearest_reference_rows():
    generator = torch.Generator().manual_seed(3)
    reference = torch.randn(300, 7, generator=generator)
    query = torch.randn(2500, 7, generator=generator)  # more than one block of 1,024
    expected = np.sort(
        np.linalg.norm(query.numpy()[:, None, :] - reference.numpy()[None], axis=2), axis=1
    )[:, :5].mean(1)
    assert np.allclose(knn_distance(reference, query, 5).numpy(), expected, rtol=1e-6)
    assert np.allclose(knn_distance(reference[:3], query, 5).numpy(),
                       np.linalg.norm(query.numpy()[:, None] - reference[:3].numpy()[None],
                                      axis=2).mean(1), rtol=1e-6)  # fmt: skip
    assert torch.equal(
        knn_distance(reference, reference[:4], 1), torch.zeros(4, dtype=torch.float64)
    )
    with pytest.raises(ValueError, match=r"reference \[R, D\] and query \[N, D\]"):
        knn_distance(reference, query[:, :3])


def test_reference_sample_keeps_a_small_training_split_and_samples_a_large_one():
    assert reference_sample(40, seed=0, size=100) == list(range(40))
    sample = reference_sample(10_000, seed=1, size=100)
    assert len(sample) == len(set(sample)) == 100 and sample == sorted(sample)
    assert sample == reference_sample(10_000, seed=1, size=100)
    assert sample != reference_sample(10_000, seed=2, size=100)


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
    assert calibration["method"] == "normalized_conformal" and calibration["confidence"] == 0.9
    assert 0.0 <= metrics["test_coverage"] <= 1.0 and metrics["test_half_width"] > 0
    model = load_model(regression_dir)
    assert model.calibration["quantile"] == calibration["quantile"]
    assert model.calibration["n_reference"] == metrics["n_train"]  # below REFERENCE_SIZE: all
    smiles = ["CCO", "CCCCCCN", "c1ccccc1CCCCCCCCCC(=O)O"]
    table = model.predict(smiles)
    assert list(table) == ["smiles", "size", "size_std", "size_lo", "size_hi", "error"]
    # the half-width is the quantile times sigma(x): the members' mean distance to the
    # NEIGHBOURS nearest reference embeddings, recomputed here from embed() and numpy
    graphs, _, _ = model.featurize(smiles)
    k = calibration["neighbours"]
    sigma = np.mean([
        np.sort(np.linalg.norm(model.embed(graphs, member=m).numpy()[:, None]
                               - model.reference[m].numpy()[None], axis=2), axis=1)[:, :k].mean(1)
        for m in range(len(model.members))
    ], axis=0) + calibration["offset"]  # fmt: skip
    half = calibration["quantile"][0] * sigma
    assert np.allclose(table["size_hi"] - table["size"], half, rtol=1e-6)
    assert np.allclose(table["size"] - table["size_lo"], half, rtol=1e-6)
    assert len(np.unique(np.round(half, 6))) == 3  # one width per molecule
    # the test coverage and width in metrics.json are those of predictions.csv's test rows
    rows = [r for r in read_csv(regression_dir / "predictions.csv") if r["split"] == "test"]
    y, lo, hi = (np.array([float(r[c]) for r in rows]) for c in ("size_true", "size_lo", "size_hi"))
    assert metrics["test_coverage"] == pytest.approx(np.mean((lo <= y) & (y <= hi)), abs=1e-6)
    assert metrics["test_half_width"] == pytest.approx(np.mean(hi - lo) / 2, rel=1e-5)


def test_the_final_epochs_residuals_calibrate_the_interval(tmp_path, data_csv):
    # 20 epochs at a high peak rate: the best (validation) epoch is an early one, so the final
    # and the best models differ; the quantile is that of |y - final epoch| / sigma over the
    # validation molecules
    from gconv.molecule.training import final_epoch_model

    quick = [*QUICK]
    quick[quick.index("--epochs") + 1] = "20"
    argv = ["train", "--data-path", str(data_csv), "--target-columns", "size", *quick]
    metrics = run([*argv, "--lr", "0.1", "--no-baselines", "-o", str(tmp_path / "run")])
    assert metrics["best_epochs"][0] < 15 and metrics["epochs"] == 20
    assert metrics["calibration"]["calibration_set"].startswith("the validation split: the final")
    model = load_model(tmp_path / "run")
    rows = [r for r in read_csv(tmp_path / "run" / "predictions.csv") if r["split"] == "val"]
    graphs, _, _ = model.featurize([r["smiles"] for r in rows])
    y = np.array([float(r["size_true"]) for r in rows])
    sigma = model.difficulty(graphs)
    final = final_epoch_model(model, tmp_path / "run", model.config["model"]["kwargs"])
    final_residual = np.abs(y - final.predict_graphs(graphs)[0][:, 0])
    best_residual = np.abs(y - model.predict_graphs(graphs)[0][:, 0])
    expected = conformal_half_width(final_residual / sigma, 0.9)[0]
    assert model.calibration["quantile"][0] == pytest.approx(expected, rel=1e-9)
    assert expected != pytest.approx(conformal_half_width(best_residual / sigma, 0.9)[0], rel=0.01)


def test_difficulty_a_batch_at_a_time_equals_it_from_all_embeddings(regression_dir):
    # sigma(x) is reduced from each batch's embeddings (a million molecules' are never held):
    # the same numbers as from every embedding gathered first, whatever the batch size (to the
    # float32 rounding of an embedding: another batch size can round its last bit otherwise)
    model = load_model(regression_dir)
    rows = read_csv(regression_dir / "predictions.csv")
    graphs, _, _ = model.featurize([r["smiles"] for r in rows])
    outputs, embeddings, _ = model._run(graphs, 256, embeddings=True)
    whole = model.difficulty_of(embeddings)
    for batch_size in (1, 3, 256):
        again, _, streamed = model._run(graphs, batch_size, difficulty=True)
        np.testing.assert_allclose(streamed, whole, rtol=1e-6, atol=0)
        torch.testing.assert_close(again, outputs, rtol=0, atol=1e-12)
    assert len(np.unique(np.round(whole, 9))) > 1


def test_a_prediction_pass_fills_arrays_made_before_it_and_trims(regression_dir, monkeypatch):
    # results are written into arrays made before the pass (no per-batch tensors kept to its
    # end, which fragmented glibc's heap), and the heap is trimmed every TRIM_EVERY batches
    import gconv.molecule.model as model_module

    calls = []
    monkeypatch.setattr(model_module, "release_free_memory", lambda: calls.append(1))
    monkeypatch.setattr(model_module, "TRIM_EVERY", 4)
    model = load_model(regression_dir)
    rows = read_csv(regression_dir / "predictions.csv")
    graphs, _, _ = model.featurize([r["smiles"] for r in rows])
    whole, _, sigma = model._run(graphs, len(graphs), difficulty=True)
    calls.clear()
    outputs, _, streamed = model._run(graphs, 2, difficulty=True)
    batches = -(-len(graphs) // 2)
    assert len(calls) == len(model.members) * (batches // 4 + 1)  # each member's own pass
    torch.testing.assert_close(outputs, whole, rtol=0, atol=1e-12)
    np.testing.assert_allclose(streamed, sigma, rtol=1e-6)


def test_training_runs_each_split_once_for_predictions_and_sigma(tmp_path, data_csv, monkeypatch):
    # one pass per split gives its predictions and its sigma(x); besides those, only the
    # reference sample (embeddings) and the final epoch's validation predictions are run
    from gconv.molecule.model import MoleculeModel

    calls = []
    original = MoleculeModel._run

    def counting(self, graphs, batch_size, embeddings=False, difficulty=False):
        calls.append((len(graphs), embeddings, difficulty))
        return original(self, graphs, batch_size, embeddings, difficulty)

    monkeypatch.setattr(MoleculeModel, "_run", counting)
    argv = ["train", "--data-path", str(data_csv), "--target-columns", "size", *QUICK]
    metrics = run([*argv, "--no-baselines", "-o", str(tmp_path / "run")])
    n_train, n_val, n_test = metrics["n_train"], metrics["n_val"], metrics["n_test"]
    assert sorted(calls) == sorted([
        (n_train, True, False),  # the reference sample: every training molecule, this small
        (n_train, False, True), (n_val, False, True), (n_test, False, True),
        (n_val, False, False),  # the final epoch's model on the validation split
    ])  # fmt: skip


def test_calibration_holdout_calibrates_on_scaffolds_that_chose_no_epoch(tmp_path, data_csv):
    argv = ["train", "--data-path", str(data_csv), "--target-columns", "size", *QUICK]
    argv += ["--split-sizes", "0.6", "0.3", "0.1", "--calibration-holdout", "--no-baselines"]
    metrics = run([*argv, "-o", str(tmp_path / "h")])
    assert metrics["n_calibration"] > 0
    assert metrics["calibration"]["calibration_set"].startswith("half the validation scaffolds")
    rows = read_csv(tmp_path / "h" / "predictions.csv")
    by_split = {}
    for r in rows:
        by_split.setdefault(r["split"], []).append(r)
    assert len(by_split["calibration"]) == metrics["n_calibration"]
    assert len(by_split["val"]) == metrics["n_val"]
    from gconv.data import murcko_scaffold

    scaffolds = {k: {murcko_scaffold(r["smiles"]) for r in v} for k, v in by_split.items()}
    assert not scaffolds["calibration"] & scaffolds["val"]  # whole scaffold groups
    # the quantile is that of the calibration half's best-epoch residuals
    model = load_model(tmp_path / "h")
    cal = by_split["calibration"]
    graphs, _, _ = model.featurize([r["smiles"] for r in cal])
    residual = np.array([abs(float(r["size_true"]) - float(r["size_pred"])) for r in cal])
    expected = conformal_half_width(residual / model.difficulty(graphs), 0.9)[0]
    assert model.calibration["quantile"][0] == pytest.approx(expected, rel=1e-5)


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
    header = list(read_csv(tmp_path / "c" / "predictions.csv")[0])
    assert header[-4:] == ["size_std", "size_lo", "size_hi", "error"]
    assert list(read_csv(tmp_path / "off" / "predictions.csv")[0])[-2:] == ["size_std", "error"]
    with pytest.raises(SystemExit):
        run([*common, "--confidence", "1.5"])
